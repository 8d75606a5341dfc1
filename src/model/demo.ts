import { ENTRY, entryStatusWord } from "../protocol/status.js";
import type { ChatMessage, ChatOptions, ChatRequest, ChatResponse, ModelProvider, ToolCall } from "./provider.js";
import { SEARCH_TOOL } from "./search-tool.js";

/**
 * The built-in demo model (`spool serve --demo-model`, or SPOOL_MODEL_<ALIAS>=demo/builtin): no network, no key,
 * the same answers for the same conversation. It proposes one command taken from the prompt (the first text
 * between backticks, else `ls`), waits for it while it runs, then answers from its output and stops. It lets a
 * person try the whole path — proposal, decision, live output, the model reading it — on a fresh machine.
 */
export class DemoProvider implements ModelProvider {
  readonly name = "demo/builtin";

  async chat(request: ChatRequest, options: ChatOptions): Promise<ChatResponse> {
    const { text, call } = demoAnswer(
      request.messages,
      request.tools.map((t) => t.function.name),
    );
    for (const word of text.split(/(?<= )/)) {
      if (options.signal.aborted) throw new Error("aborted");
      options.onText(word);
      // Word by word, as a real model streams; a turn of the event loop between words.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const toolCalls: ToolCall[] = call
      ? [{ id: `demo_${request.messages.length}`, type: "function", function: { name: call.name, arguments: JSON.stringify(call.arguments) } }]
      : [];
    return { content: text, toolCalls, finishReason: call ? "tool_calls" : "stop" };
  }
}

/** The command a prompt asks for: its first `backticked` text, else `ls`. */
export function demoCommand(prompt: string): string {
  const quoted = /`([^`\n]+)`/.exec(prompt)?.[1]?.trim();
  return quoted || "ls";
}

export function demoAnswer(messages: ChatMessage[], tools: string[]): { text: string; call?: { name: string; arguments: object } } {
  let lastUser = -1;
  messages.forEach((m, i) => {
    if (m.role === "user") lastUser = i;
  });
  const prompt = lastUser >= 0 ? String(messages[lastUser]!.content ?? "") : "";
  const since = messages.slice(lastUser + 1);
  const result = since.filter((m): m is Extract<ChatMessage, { role: "tool" }> => m.role === "tool").at(-1);
  const command = demoCommand(prompt);
  const tool = tools.includes("sh") ? "sh" : "env";
  if (!result) {
    return { text: `[demo model] I will run \`${command}\` and read its output. `, call: { name: tool, arguments: { command } } };
  }
  const content = result.content;
  const log = /^log: (\S+)/m.exec(content)?.[1];
  // The tool result's "status: …" line, in the words the agent's tools write (src/agent/interactive.ts statusText).
  const status = /^status: (.*)$/m.exec(content)?.[1] ?? "";
  if (status.startsWith("still running") && log && tools.includes("wait")) {
    return { text: "[demo model] It is still running; I will wait for it. ", call: { name: "wait", arguments: { path: log } } };
  }
  if (status === entryStatusWord(ENTRY.rejected)) {
    const reason = /^reason: (.*)$/m.exec(content)?.[1] ?? "no reason given";
    return { text: `[demo model] \`${command}\` was rejected (${reason}), so I stop here.` };
  }
  if (status.startsWith("waiting for")) return { text: `[demo model] \`${command}\` is still waiting for a decision; I stop here.` };
  const exit = /^exit code: (-?\d+)/m.exec(content)?.[1];
  const signal = /^signal: (\S+)/m.exec(content)?.[1];
  const outcome = signal ? `ended by ${signal}` : exit !== undefined ? `exited ${exit}` : "ended";
  // The last lines of output the command printed (the channel headers and notes left out).
  const output = content
    .split("\n")
    .filter((line) => !/^(status|log|exit code|signal|reason): /.test(line) && !line.startsWith("--- ") && line.trim() !== "")
    .slice(-3);
  // The view of a long output was cut: say what was left out and the tool that searches it.
  const cut = /^\[… (\d+) lines? \(about \d+ bytes?\) of (\S+) left out/m.exec(content);
  const searchable =
    cut && tools.includes(SEARCH_TOOL)
      ? ` ${cut[1]} lines of ${cut[2]} were left out of my view; the ${SEARCH_TOOL} tool searches all of it, with no command to approve.`
      : "";
  const tail = output.length ? ` Its output ends with:\n${output.map((l) => `  ${l}`).join("\n")}` : " It printed nothing.";
  return { text: `[demo model] \`${command}\` ${outcome}.${searchable}${tail}\n` };
}
