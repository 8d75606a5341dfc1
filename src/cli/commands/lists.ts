import { spendWords } from "../../protocol/agent-words.js";
import type { ResultOf } from "../../protocol/methods/index.js";
import { networkShown } from "../../protocol/proposal-facts.js";
import { runState } from "../../protocol/shown-state.js";
import { ENTRY, entryStatusWord } from "../../protocol/status.js";
import { isLogEntry, producerPath, producersOf } from "../../protocol/views.js";
import { commandOf, defineCommand, JSON_OPTION } from "../command-spec.js";
import { age, connectIfProject, connectionLost, connectServer, forEachProject, printRows, withClient } from "../common.js";
import { EXIT } from "../errors.js";
import { RUN_HELP, resolveRun, runCommands } from "../refs.js";
import { outcomeWords } from "../words.js";

/** The commands that list: runs, entries, models (runners: runners.ts). */

const RUNS_SPEC = defineCommand({
  name: "runs",
  usage: "spool runs [--all] [--json | -q]",
  about:
    "Lists the project's runs, newest first: name, state, title (what the run was asked first),\nmodel and when it last changed. With --all, or outside any project, every project's runs.",
  connects: true,
  maxArgs: 0,
  options: {
    all: { type: "boolean", help: "every project's runs, with their project" },
    quiet: { type: "boolean", short: "q", help: "only the runs' names, one a line (scripts, tab completion)" },
    ...JSON_OPTION,
  },
});

export const RUNS = commandOf(RUNS_SPEC, async (values) => {
  type Listed = ResultOf<"run/list">["runs"][number] & { project?: string };
  const rows: Listed[] = [];
  let across = Boolean(values.all);
  let emptyHere: string | null = null;
  if (!across) {
    const { client, project, here } = await connectIfProject(values);
    try {
      if (project) rows.push(...(await client.call("run/list", {})).runs);
      else if (!here) across = true;
      else emptyHere = here.name ?? here.root ?? "";
    } finally {
      client.close();
    }
  }
  if (across) {
    await forEachProject(values, async (client, name) => {
      rows.push(...(await client.call("run/list", {})).runs.map((r) => ({ project: name, ...r })));
    });
    rows.sort((a, b) => b.updatedAt - a.updatedAt);
  }
  if (values.json) {
    printRows(rows, [], true);
    return EXIT.ok;
  }
  if (values.quiet) {
    for (const r of rows) process.stdout.write(`${r.alias}\n`);
    return EXIT.ok;
  }
  if (rows.length === 0) {
    process.stdout.write(
      across
        ? 'no runs on this server yet — start one in a project with `spool act "…" --model ALIAS`\n'
        : `no runs in this project${emptyHere ? ` (${emptyHere})` : ""} yet — start one with \`spool act "…" --model ALIAS\`\n`,
    );
    return EXIT.ok;
  }
  printRows(
    rows.map((r) => ({
      run: r.alias,
      ...(across ? { project: r.project } : {}),
      state: runState(r),
      title: r.title ?? "",
      model: r.model,
      spent: r.spend ? spendWords(r.spend, r.budget) : "",
      updated: `${age(r.updatedAt)} ago`,
    })),
    ["run", ...(across ? ["project"] : []), "state", "title", "model", "spent", "updated"],
    false,
  );
  return EXIT.ok;
});

const ENTRIES_SPEC = defineCommand({
  name: "entries",
  usage: "spool entries [RUN] [--pattern GLOB] [--json]",
  about: `Lists a run's entries (proposals, output channels, errors), oldest first; each command is
numbered (#) and its state is what it does now (running, done, exit 0, failed, exit 2, …).

${RUN_HELP}`,
  connects: true,
  maxArgs: 1,
  options: { pattern: { type: "string", arg: "GLOB", help: "only paths matching it, e.g. 'sh://*'" }, ...JSON_OPTION },
});

export const ENTRIES = commandOf(ENTRIES_SPEC, async (values, rest) => {
  await withClient(values, async (client) => {
    const run = await resolveRun(client, rest[0]);
    const { entries } = await client.call("entry/list", { run, ...(values.pattern ? { pattern: values.pattern } : {}) });
    if (values.json) return printRows(entries, [], true);
    const all = values.pattern ? (await client.call("entry/list", { run })).entries : entries;
    const numbers = new Map((await runCommands(client, run)).map((c) => [c.path, c.number]));
    // A command's state is what it does now (a command still running is "running", never the accept's "done"); a channel's is its command's.
    const producers = new Map(producersOf(all).map((p) => [p.path, p]));
    const state = (e: (typeof entries)[number]) => {
      const producer = producers.get(producerPath(e) ?? "");
      if (!producer) return entryStatusWord(e.status);
      return !isLogEntry(e) && e.status === ENTRY.streaming ? "running" : outcomeWords(producer);
    };
    printRows(
      entries.map((e) => ({
        "#": numbers.get(e.path) ?? "",
        path: e.path,
        channel: e.channel?.name ?? "",
        state: state(e),
        turn: e.turn,
        bytes: e.bytes,
        lines: e.lines,
        // A command's network (its log entry's row): the mode, the list, and where it went.
        network: e.producer ? networkShown(e.producer) : "",
      })),
      ["#", "path", "channel", "state", "turn", "bytes", "lines", "network"],
      false,
    );
  });
  return EXIT.ok;
});

const MODELS_SPEC = defineCommand({
  name: "models",
  usage: "spool models [--json]",
  about: 'Lists the model aliases the server knows (SPOOL_MODEL_<alias> where it runs; "demo" with\nspool serve --demo-model). Needs no project.',
  connects: true,
  maxArgs: 0,
  options: JSON_OPTION,
});

export const MODELS = commandOf(MODELS_SPEC, async (values) => {
  const client = await connectServer(values);
  try {
    const { models } = await Promise.race([client.call("model/list", {}), connectionLost(client, "while waiting for its answer")]);
    if (models.length === 0 && !values.json) {
      process.stdout.write(
        "no models on this server — define one where it runs and restart it: SPOOL_MODEL_FAST=openai/gpt-4o-mini with\nOPENAI_API_KEY (or ollama/<model>), or try the built-in one: spool serve --demo-model\n",
      );
      return EXIT.ok;
    }
    printRows(
      values.json ? models : models.map((m) => ({ ...m, model: m.provider === "demo" ? "builtin (no network)" : m.model })),
      ["alias", "provider", "model", "baseUrl"],
      values.json,
    );
  } finally {
    client.close();
  }
  return EXIT.ok;
});
