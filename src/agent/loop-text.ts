import type { ToolCall } from "../model/provider.js";

// What the agent loop tells the model in words of its own: its instructions, and what it says about a reply it
// could not take as it was.

export const SYSTEM_PROMPT = [
  "You are an agent working in a software project through Spool.",
  "Run shell commands with the sh tool (a person accepts or rejects each one) or env for read-only inspection.",
  "Command output comes back cleaned; large outputs are cut to a head and a tail, and the note says how to read the rest with get.",
  "Use wait for commands that are still running; write answers a command that asks a question, and kill stops one.",
  "Start long-running work (a dev server, a watch build) with background: true; jobs lists what still runs.",
  "Call done with a short summary when the task is finished.",
].join(" ");

/** What the model is told after a reply cut at the output token limit: it continues. */
export const LENGTH_NOTE =
  'Spool: your last reply was cut off at the output token limit (finish_reason "length"), so it is incomplete. ' +
  "Continue from where it stopped, more briefly; call done with a summary when the task is finished.";

/** What the model is told about a call whose arguments were not a JSON object; the call is not run. */
export function malformedAnswer(call: ToolCall, raw: string, truncated: boolean): string {
  const excerpt = raw.length > 1000 ? `${raw.slice(0, 1000)}… (${raw.length} characters)` : raw;
  return [
    `error: the arguments of ${call.function.name || "this call"} were not one JSON object, so nothing was run` +
      (truncated ? ' (your reply hit the output token limit, finish_reason "length", and was cut off)' : "") +
      ".",
    `They were: ${excerpt || "(empty)"}`,
    "Call the tool again with arguments that are a single JSON object.",
  ].join("\n");
}
