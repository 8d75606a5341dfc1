import { z } from "zod";
import type { Core } from "../../core/index.js";
import { Attributes, RunAlias, Status } from "../../core/schemas.js";
import { ENTRY } from "../../core/status.js";
import { channelFromRow } from "../../store/producer-row.js";
import type { RunRow } from "../../store/schema.js";
import { defineMethod } from "../define.js";

const HistoryToolCall = z.object({
  id: z.string(),
  tool: z.string(),
  arguments: Attributes.describe("The call's arguments ({} when they were not one JSON object)"),
  path: z.string().nullable().describe("The log entry of the proposal it made (sh, env)"),
  status: Status.nullable().describe("That producer's status now: 202 proposed, 403 rejected, then its channels' 102/200/499/500"),
  exitCode: z.number().int().nullable(),
});

export const HistoryMessage = z.object({
  id: z.number().int().describe("Message id: pass the last one as `after` for the next page"),
  loop: z.number().int().nullable().describe("The loop (its number) the message belongs to"),
  turn: z.number().int(),
  role: z.enum(["user", "assistant", "tool"]),
  text: z.string().nullable().describe("The prompt, the model's text, or what a tool call was answered"),
  note: z.boolean().describe("A note Spool wrote to the model, not a person's prompt"),
  toolCalls: z.array(HistoryToolCall).describe("The model's tool calls (assistant messages)"),
  toolCallId: z.string().nullable().describe("The call a tool message answers"),
  createdAt: z.number().int(),
});

type StoredMessage = {
  role: string;
  content?: string | null;
  tool_calls?: { id: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
  spool?: { note?: string };
};

function argumentsOf(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text || "{}");
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

async function producerOf(core: Core, run: RunRow, callId: string): Promise<{ path: string | null; status: number | null; exitCode: number | null }> {
  const log = await core.repos.entries.findLogByAttribute(run.id, "toolCallId", callId);
  if (!log) return { path: null, status: null, exitCode: null };
  if (log.status !== ENTRY.done) return { path: log.path, status: log.status, exitCode: null };
  const channels = await core.repos.entries.listChannels(log.id);
  const status = channels.some((c) => c.status === ENTRY.streaming) ? ENTRY.streaming : (channels[0]?.status ?? log.status);
  return { path: log.path, status, exitCode: channels[0] ? channelFromRow(channels[0]).exitCode : null };
}

export const runHistory = defineMethod({
  name: "run/history",
  description:
    "A run's conversation, a page at a time: the prompts, the model's text and tool calls (with the producer each made and its status now), and what each call was answered.",
  params: z.strictObject({
    run: RunAlias,
    after: z.number().int().min(0).optional().describe("Only messages after this id (the last id of the previous page)"),
    limit: z.number().int().min(1).max(500).optional().describe("At most this many messages (default 100)"),
  }),
  result: z.object({
    messages: z.array(HistoryMessage),
    next: z.number().int().nullable().describe("Pass as `after` for the next page; null at the end"),
  }),
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const limit = params.limit ?? 100;
    const rows = await ctx.core.repos.messages.listMessagePage(run.id, { afterId: params.after ?? 0, limit });
    const messages: z.input<typeof HistoryMessage>[] = [];
    for (const row of rows) {
      if (row.role === "system") continue;
      const body = JSON.parse(row.body) as StoredMessage;
      const toolCalls = [];
      for (const call of body.tool_calls ?? []) {
        toolCalls.push({
          id: call.id,
          tool: call.function.name,
          arguments: argumentsOf(call.function.arguments),
          ...(await producerOf(ctx.core, run, call.id)),
        });
      }
      messages.push({
        id: row.id,
        loop: row.loop,
        turn: row.turn,
        role: row.role,
        text: typeof body.content === "string" ? body.content : null,
        note: body.spool?.note !== undefined,
        toolCalls,
        toolCallId: body.tool_call_id ?? null,
        createdAt: row.created_at,
      });
    }
    return { messages, next: rows.length === limit ? rows.at(-1)!.id : null };
  },
});
