import { compactionWords as compactionLine, pausedWords, spendWords } from "../../protocol/agent-words.js";
import type { ResultOf } from "../../protocol/methods/index.js";
import { networkShown } from "../../protocol/proposal-facts.js";
import { runState } from "../../protocol/shown-state.js";
import { producerOf } from "../../protocol/views.js";
import { commandOf, defineCommand, JSON_OPTION } from "../command-spec.js";
import { age, escapeControl, palette, printRows, withClient } from "../common.js";
import { EXIT } from "../errors.js";
import { RUN_HELP, resolveRun, runCommands } from "../refs.js";
import { outcomeWords } from "../words.js";

/** `spool show RUN`: the conversation and its commands, as `gh run view` shows a run. */
const SHOW_SPEC = defineCommand({
  name: "show",
  usage: "spool show [RUN] [--json]",
  about: `Shows a run: its state, model and title, then the conversation — each prompt, the model's text,
and every command it proposed, numbered, with how it ended (or that it waits or runs).

${RUN_HELP}`,
  connects: true,
  maxArgs: 1,
  options: JSON_OPTION,
});

export const SHOW = commandOf(SHOW_SPEC, async (values, rest) => {
  return withClient(values, async (client) => {
    const alias = await resolveRun(client, rest[0]);
    const { run } = await client.call("run/get", { run: alias });
    const messages: ResultOf<"run/history">["messages"] = [];
    let after: number | undefined;
    for (let page = 0; page < 50; page++) {
      const reply = await client.call("run/history", { run: alias, limit: 500, ...(after ? { after } : {}) });
      messages.push(...reply.messages);
      if (reply.next === null) break;
      after = reply.next;
    }
    const commands = await runCommands(client, alias);
    if (values.json) {
      printRows([{ run, messages, commands }], [], true);
      return EXIT.ok;
    }
    const colours = palette();
    const out: string[] = [
      `${colours.bold(run.alias)}  ${runState(run)}${run.model ? `  model ${run.model}` : ""}  ${run.mode}  updated ${age(run.updatedAt)} ago`,
    ];
    if (run.title) out.push(escapeControl(run.title));
    if (run.spend && (run.spend.tokens > 0 || run.budget)) out.push(colours.dim(`spent ${spendWords(run.spend, run.budget)}`));
    if (run.paused) out.push(`${colours.yellow("paused")}: ${pausedWords(run.paused)} — spool budget ${run.alias} +… to go on, or spool abort ${run.alias}`);
    const shown = new Set<string>();
    const commandLine = (c: (typeof commands)[number]) => {
      shown.add(c.path);
      const producer = producerOf(c);
      // Where it could go and, with an allowlist, where it went: on a line of its own under it.
      return `  ${colours.cyan(`#${c.number}`)} ${colours.bold(escapeControl(producer.command))}  ${colours.dim(`${c.path} · ${outcomeWords(producer)}`)}\n      ${colours.dim(`network ${networkShown(producer)}`)}`;
    };
    for (const m of messages) {
      if (m.role === "user" && !m.note) out.push("", `${colours.bold("▌ prompt")} ${escapeControl(m.text ?? "")}`);
      if (m.compaction) out.push(colours.dim(compactionLine(m.compaction)));
      if (m.role === "assistant") {
        if (m.text?.trim()) out.push(escapeControl(m.text.trim()).replace(/\\n/g, "\n"));
        for (const call of m.toolCalls) {
          const c = call.path ? commands.find((x) => x.path === call.path) : undefined;
          if (c) out.push(commandLine(c));
          else if (call.tool === "done") out.push(`${colours.green("✔ done:")} ${escapeControl(String(call.arguments.summary ?? ""))}`);
          else out.push(colours.dim(`  (${call.tool}${call.arguments.path ? ` ${escapeControl(String(call.arguments.path))}` : ""})`));
        }
      }
    }
    // Commands a client proposed by hand are in no message.
    const others = commands.filter((c) => !shown.has(c.path));
    if (others.length) out.push("", colours.bold("commands proposed by clients"), ...others.map(commandLine));
    process.stdout.write(`${out.join("\n")}\n`);
    if (commands.length) process.stdout.write(colours.dim(`\noutput of a command: spool tail ${run.alias} N\n`));
    return EXIT.ok;
  });
});
