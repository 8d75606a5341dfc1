import type { z } from "zod";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import type { HistoryMessage } from "../../protocol/methods/run.js";

type StoredMessage = {
  role: string;
  content?: string | null;
  tool_calls?: { id: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
  spool?: { note?: string; compaction?: { id: string; reason: "window" | "too long"; replaced: number; tokensBefore: number; tokensAfter: number } };
};

function argumentsOf(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text || "{}");
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export const runHistory = defineMethod({
  ...methods["run/history"],
  handler: async (params, ctx) => {
    const run = await ctx.core.lifecycle.requireRun(ctx.project, params.run);
    const limit = params.limit ?? 100;
    const rows = await ctx.core.runs.history(run.id, { afterId: params.after ?? 0, limit });
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
          ...(await ctx.core.proposals.ofToolCall(run.id, call.id)),
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
        ...(body.spool?.compaction ? { compaction: body.spool.compaction } : {}),
        createdAt: row.created_at,
      });
    }
    return { messages, next: rows.length === limit ? rows.at(-1)!.id : null };
  },
});
