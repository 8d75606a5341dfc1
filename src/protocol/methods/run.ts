import { z } from "zod";
import { Attributes, EntryPath, QueuedPlace, ResolvedChannel, Run, RunAlias, RunnerRef, Status, Traceparent } from "../common.js";
import { request } from "../define.js";
import { ENTRY } from "../status.js";
import { Budget } from "../views-schemas.js";

export const RunCreateParams = z.strictObject({
  alias: RunAlias.optional(),
  model: z.string().min(1).max(200).optional().describe("Model alias; without one the run is idle and fed by clients"),
  mode: z.enum(["ask", "act"]).optional().describe("ask: read-only tools only; act (default): all tools"),
  prompt: z.string().min(1).optional().describe("First prompt; needs a model"),
  title: z.string().min(1).max(200).optional().describe("What lists show (default: the first line of the first prompt)"),
  budget: Budget.optional().describe(
    "Its own limits (else its project's and its principal's defaults): at one, the run pauses and a person is asked. Below person, each within the configured default (FORBIDDEN over one: a person raises it with run/budget)",
  ),
});

export const runCreate = request({
  name: "run/create",
  role: "agent",
  description: "Creates a run in the caller's project. Without `model` the run is idle (status 200) and clients feed it by hand.",
  params: RunCreateParams,
  result: z.object({ run: Run, loop: z.number().int().optional().describe("With `prompt`: the number of the loop it became") }),
});

const Tokens = {
  promptTokens: z.number().int().describe("Input tokens, the prompt cache's reads and writes included"),
  completionTokens: z.number().int(),
  totalTokens: z.number().int(),
  cacheReadTokens: z.number().int().describe("Input tokens read from the provider's prompt cache"),
  cacheWriteTokens: z.number().int().describe("Input tokens written to the provider's prompt cache"),
  costUsd: z.number().describe("What the calls cost in US dollars, from the price table (config.json `prices` overrides it); 0 for a model it does not price"),
};

/** The tokens the model server reported for a run: totals, and per turn (turns it reported nothing for are absent). */
export const RunUsage = z.object({
  ...Tokens,
  turns: z.array(z.object({ turn: z.number().int(), ...Tokens })),
});

export const runGet = request({
  name: "run/get",
  role: "viewer",
  description: "One run of the caller's project, with the token usage its model calls reported.",
  params: z.strictObject({ run: RunAlias }),
  result: z.object({ run: Run, usage: RunUsage }),
});

export const runList = request({
  name: "run/list",
  role: "viewer",
  description: "Runs of the caller's project, newest first.",
  params: z.strictObject({
    status: Status.optional(),
    limit: z.number().int().min(1).max(1000).optional().describe("At most this many (default 100)"),
  }),
  result: z.object({ runs: z.array(Run) }),
});

export const runPrompt = request({
  name: "run/prompt",
  role: "agent",
  ownRuns: true,
  description:
    "Queues a prompt as the run's next loop (FIFO); it starts when the loops before it finish. `run/state` events name the loop they are about by this number.",
  params: z.strictObject({
    run: RunAlias,
    prompt: z
      .string()
      .min(1)
      .max(256 * 1024),
    mode: z.enum(["ask", "act"]).optional(),
    model: z.string().min(1).max(200).optional().describe("Switch the run to this model alias, for this loop and the next ones"),
    traceparent: Traceparent.optional().describe(
      "The caller's W3C trace context: the traces of the proposals this loop's model makes continue it (else the connection's, from initialize)",
    ),
  }),
  result: z.object({
    run: Run,
    loop: z.number().int().describe("The number of the loop this prompt became"),
    queued: z.number().int().describe("Loops waiting before and including this one"),
  }),
});

export const runBudget = request({
  name: "run/budget",
  role: "person",
  description:
    'Raises (`add`) or sets (`set`) a run\'s budget. A run paused at its budget goes on from where it was once the budget is past what it spent (`run/state` "budget raised"); still at it, it stays paused. Stop a paused run with run/abort.',
  params: z
    .strictObject({
      run: RunAlias,
      add: Budget.optional().describe("Added to the run's budget now (its own, else its defaults)"),
      set: Budget.optional().describe("The run's own limits from now on, in place of what it had for those limits"),
    })
    .refine((p) => p.add !== undefined || p.set !== undefined, { message: "give add or set" }),
  result: z.object({ run: Run, resumed: z.boolean().describe("The run was paused and goes on now") }),
});

export const runAbort = request({
  name: "run/abort",
  role: "agent",
  ownRuns: true,
  description:
    "Stops a run: the model call in flight, its queued loops, its pending proposals (rejected) and its running commands (cancelled; runners kill them), including commands started in the background by a turn that has ended. The run ends 499. A run with nothing left to stop is CONFLICT. An agent stops only the runs it created (what it may withdraw and cancel there); a person any run of its projects.",
  params: z.strictObject({ run: RunAlias, reason: z.string().max(4096).optional() }),
  result: z.object({ run: Run, rejected: z.array(z.string()), cancelled: z.array(z.string()) }),
});

const HistoryToolCall = z.object({
  id: z.string(),
  tool: z.string(),
  arguments: Attributes.describe("The call's arguments ({} when they were not one JSON object)"),
  path: z.string().nullable().describe("The log entry of the proposal it made (sh, env)"),
  status: Status.nullable().describe(
    `That producer's status now: ${ENTRY.proposed} proposed, ${ENTRY.rejected} rejected, then its channels' ${ENTRY.streaming}/${ENTRY.done}/${ENTRY.cancelled}/${ENTRY.failed}`,
  ),
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
  compaction: z
    .object({
      id: z.string(),
      reason: z.enum(["window", "too long"]),
      replaced: z.number().int().describe("Messages before it that the summary replaced in the model's requests (they stay here)"),
      tokensBefore: z.number().int(),
      tokensAfter: z.number().int(),
    })
    .nullable()
    .optional()
    .describe("A compaction's summary (a note; `text` is what the model is sent): the conversation went on from it"),
  createdAt: z.number().int(),
});

export const runHistory = request({
  name: "run/history",
  role: "viewer",
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
});

export const RunResolveParams = z
  .strictObject({
    run: RunAlias,
    path: EntryPath.describe("The proposal's log entry path"),
    decision: z.enum(["accept", "reject"]),
    reason: z.string().max(4096).optional(),
    runner: RunnerRef.optional().describe(
      "Runner to execute it (default: the runner or pool the proposal named, else the project's default); naming another runner or pool than the proposal named is CONFLICT. \"self\" = the accepting connection owns the producer and streams its output. `{pool}` or `{labels}` (a proposal that named none): one free runner of the pool takes it, and it waits in the pool's queue while all are busy",
    ),
    facts: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        "With accept: the facts revision the person was shown (the proposal's `factsRevision`, 1 when absent). When the facts changed since (the runner's server stopped and another's runner took its place), the accept is FACTS_CHANGED and nothing runs: decide again on the facts now shown. Absent: not compared. Whatever it says, an accept whose runner now makes another claim than the one recorded (another principal's runner took the name, or the runner says other modes or network; with no claim recorded, a runner attached by another principal than the name's owner) is FACTS_CHANGED too, the proposal recorded again with the claim that holds",
      ),
    how: z
      .enum(["key", "flag"])
      .optional()
      .describe(
        "How the person decided, as the client claims it: a key pressed when asked (`key`, the default) or a flag given beforehand (`flag`: spool act --yes)",
      ),
    always: z
      .boolean()
      .optional()
      .describe(
        'With accept: also store an "always allow" rule in the run, so the server itself accepts later proposals of the same tool with the identical command, cwd and env',
      ),
  })
  .refine((p) => !(p.always && p.decision !== "accept"), { message: "always is only for accept", path: ["always"] });

export const RunResolveResult = z.object({
  path: z.string(),
  status: Status.describe(`The log entry's new status: ${ENTRY.done} accepted, ${ENTRY.rejected} rejected`),
  runner: z.string().nullable().describe("The runner that took it; null while it waits in its pool's queue"),
  channels: z.array(ResolvedChannel),
  queued: QueuedPlace.optional().describe(
    `Accepted while no runner of its pool (or its runner) was free: it waits in the queue, its channels at ${ENTRY.queued}, until one takes it; stream/cancel stops it there`,
  ),
  resumeToken: z.string().optional().describe('Accepted with runner "self": show it with stream/claim to own the producer again from a new connection'),
  rule: z.number().int().optional().describe("The id of the rule stored with `always`"),
});

export const runResolve = request({
  name: "run/resolve",
  role: "agent",
  // Deciding to run a command is a person's; an agent only withdraws (rejects) its own runs' proposals.
  refusalRole: (params) => ((params as { decision?: unknown } | null)?.decision === "reject" ? "agent" : "person"),
  ownRuns: true,
  description:
    'Accepts or rejects a pending proposal, from any connection of the project. Accept opens the data channels at 102 and makes the chosen runner (or, with "self", this connection) the producer\'s owner; reject sets the log entry to 403. `always` also stores an "always allow" rule for the run.',
  params: RunResolveParams,
  result: RunResolveResult,
});
