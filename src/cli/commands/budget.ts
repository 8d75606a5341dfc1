import { amountWords, parseBudgetChange, pausedWords, spendWords } from "../../protocol/agent-words.js";
import { RUN } from "../../protocol/status.js";
import { commandOf, defineCommand } from "../command-spec.js";
import { palette, withClient } from "../common.js";
import { EXIT, usageError } from "../errors.js";
import { RUN_HELP, resolveRun } from "../refs.js";

/** `spool budget RUN [+2$ | 5$ | +50k | +10min | +3cmd …]`: a run's spend and budget; raise it, and a paused run goes on. */
const BUDGET_SPEC = defineCommand({
  name: "budget",
  usage: "spool budget [RUN] [CHANGE…]",
  about: `Shows what a run spent against its budget, or changes its budget. A run paused at its budget
goes on from where it was once the budget is past what it spent.

A CHANGE adds with + and sets without: +2$ (or +$2) dollars, 5$ sets $5; +50k or +50000tokens
tokens; +90s, +10min or +1h of work; +3cmd commands.

${RUN_HELP}`,
  connects: true,
  maxArgs: 8,
  options: {},
});

export const BUDGET = commandOf(BUDGET_SPEC, async (values, rest) => {
  return withClient(values, async (client) => {
    const changes = rest.slice(1).map((text) => ({ text, change: parseBudgetChange(text) }));
    const bad = changes.find((c) => c.change === undefined);
    if (bad) throw usageError(`"${bad.text}" is not a budget change: try +2$, 5$, +50k, +10min or +3cmd`);
    // The run may be left out when a change follows: `spool budget +2$` is the latest run's.
    const runArg = rest[0] !== undefined && parseBudgetChange(rest[0]) !== undefined ? undefined : rest[0];
    if (runArg === undefined && rest[0] !== undefined) changes.unshift({ text: rest[0], change: parseBudgetChange(rest[0]) });
    const run = await resolveRun(client, runArg);
    const colours = palette();
    if (changes.length === 0) {
      const { run: now } = await client.call("run/get", { run });
      const line = now.spend ? spendWords(now.spend, now.budget) : "";
      process.stdout.write(`${run}: ${line || "nothing spent yet"}${now.budget ? "" : " (no budget)"}\n`);
      if (now.status === RUN.paused && now.paused) process.stdout.write(`${colours.yellow("paused")}: ${pausedWords(now.paused)}\n`);
      return EXIT.ok;
    }
    const add: Record<string, number> = {};
    const set: Record<string, number> = {};
    for (const { change } of changes) (change!.op === "add" ? add : set)[change!.kind] = change!.value;
    const result = await client.call("run/budget", {
      run,
      ...(Object.keys(add).length ? { add } : {}),
      ...(Object.keys(set).length ? { set } : {}),
    });
    const budget = result.run.budget ?? {};
    const limits = (Object.keys(budget) as (keyof typeof budget)[]).map((k) => `${k === "costUsd" ? "cost" : k} ${amountWords(k, budget[k]!)}`);
    process.stdout.write(`${run}: budget ${limits.join(", ") || "none"}${result.run.spend ? ` (spent ${spendWords(result.run.spend, null)})` : ""}\n`);
    if (result.resumed) process.stdout.write(`${colours.green("resumed")}: ${run} goes on from where it paused\n`);
    else if (result.run.status === RUN.paused && result.run.paused) {
      process.stdout.write(`${colours.yellow("still paused")}: ${pausedWords(result.run.paused)}\n`);
      return EXIT.failed;
    }
    return EXIT.ok;
  });
});
