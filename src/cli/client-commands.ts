import { rmSync } from "node:fs";
import { type SpoolClient, SpoolRpcError } from "../client/spool-client.js";
import type { ResultOf } from "../protocol/methods/index.js";
import { defaultRunnerName, factsText, proposalFacts } from "../protocol/proposal-facts.js";
import { type RunnerShown, runnerShown, runState } from "../protocol/shown-state.js";
import { ENTRY, entryStatusWord, runStatusWord } from "../protocol/status.js";
import { isLogEntry, producerOf, producerPath, producersOf } from "../protocol/views.js";
import {
  age,
  CLIENT_HELP,
  CLIENT_OPTIONS,
  type ClientFlags,
  connectClient,
  connectIfProject,
  connectionLost,
  connectServer,
  escapeControl,
  forEachProject,
  JSON_OPTION,
  palette,
  parseCommand,
  printRows,
  workingDirectory,
} from "./common.js";
import { CliError, EXIT, explain, usageError } from "./errors.js";
import { writeMarker } from "./project.js";
import { resolveCommand, resolveRun, resolveRunRef, runCommands } from "./refs.js";
import { commandOutput, resetTerminal } from "./terminal-writer.js";
import { confirmKey } from "./typed-input.js";
import { endedWords, outcomeWords } from "./words.js";

export interface Command {
  help: string;
  run: (argv: string[]) => Promise<number>;
}

const usage = (line: string, text: string, extra = "") => `Usage: ${line}\n\n${text}\n\n${extra ? `Options:\n${extra}\n` : ""}${CLIENT_HELP}`;

const JSON_HELP = "  --json              print JSON instead of a table\n";

/** For commands that take RUN alone. */
const RUN_HELP = `RUN is a run's name, its number (3 for run-3) or the start of its name; omitted, the
project's latest run.`;

const REFS_HELP = `RUN is a run's name, its number (3 for run-3) or the start of its name; omitted, the
project's latest run. CMD is a command of the run: its number (as spool show lists them),
part of its path (make, turn_2/sh/npm) or the whole log path; omitted, the latest one.`;

/** Runs a command body with a client joined to the project, closing it afterwards. */
async function withClient<T>(flags: ClientFlags, body: (client: SpoolClient) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const { client } = await connectClient(flags, options);
  try {
    return await Promise.race([body(client), connectionLost(client, "while waiting for its answer")]);
  } finally {
    client.close();
  }
}

function positionals(command: string, given: string[], names: string[]): string[] {
  if (given.length < names.length) throw usageError(`spool ${command} needs ${names.join(" and ")} (see \`spool help ${command}\`)`);
  if (given.length > names.length) throw usageError(`spool ${command}: unexpected argument "${given[names.length]}" (see \`spool help ${command}\`)`);
  return given;
}

export const RUNS: Command = {
  help: usage(
    "spool runs [--all] [--json | -q]",
    "Lists the project's runs, newest first: name, state, title (what the run was asked first),\nmodel and when it last changed. With --all, or outside any project, every project's runs.",
    `  --all               every project's runs, with their project\n  -q, --quiet         only the runs' names, one a line (scripts, tab completion)\n${JSON_HELP}`,
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("runs", argv, {
      ...CLIENT_OPTIONS,
      ...JSON_OPTION,
      all: { type: "boolean" },
      quiet: { type: "boolean", short: "q" },
    });
    if (values.help) return showHelp(RUNS.help);
    positionals("runs", rest, []);
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
        updated: `${age(r.updatedAt)} ago`,
      })),
      ["run", ...(across ? ["project"] : []), "state", "title", "model", "updated"],
      false,
    );
    return EXIT.ok;
  },
};

export const ENTRIES: Command = {
  help: usage(
    "spool entries [RUN] [--pattern GLOB] [--json]",
    `Lists a run's entries (proposals, output channels, errors), oldest first; each command is
numbered (#) and its state is what it does now (running, done, exit 0, failed, exit 2, …).

${RUN_HELP}`,
    `  --pattern GLOB      only paths matching it, e.g. 'sh://*'\n${JSON_HELP}`,
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("entries", argv, { ...CLIENT_OPTIONS, ...JSON_OPTION, pattern: { type: "string" } });
    if (values.help) return showHelp(ENTRIES.help);
    if (rest.length > 1) throw usageError(`spool entries: unexpected argument "${rest[1]}" (see \`spool help entries\`)`);
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
        })),
        ["#", "path", "channel", "state", "turn", "bytes", "lines"],
        false,
      );
    });
    return EXIT.ok;
  },
};

export const MODELS: Command = {
  help: usage(
    "spool models [--json]",
    'Lists the model aliases the server knows (SPOOL_MODEL_<alias> where it runs; "demo" with\nspool serve --demo-model). Needs no project.',
    JSON_HELP,
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("models", argv, { ...CLIENT_OPTIONS, ...JSON_OPTION });
    if (values.help) return showHelp(MODELS.help);
    positionals("models", rest, []);
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
  },
};

export const RUNNERS: Command = {
  help: usage(
    "spool runners [--json]",
    "Lists the runners of the project: backend, whether it is the default (fallback: plain accepts go to\nit as no runner is the default), the sandbox modes it gives, whether it is attached or disconnected\n(its name held for it), and what it is running.",
    JSON_HELP,
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("runners", argv, { ...CLIENT_OPTIONS, ...JSON_OPTION });
    if (values.help) return showHelp(RUNNERS.help);
    positionals("runners", rest, []);
    await withClient(values, async (client) => {
      const { runners } = await client.call("runner/list", {});
      printRows(
        values.json
          ? runners
          : runners.map((r) => {
              // The words every client uses (src/protocol/shown-state.ts): default yes only when it is; fallback when plain accepts go to it.
              const shown = runnerShown(r, runners);
              return {
                name: r.name,
                backend: r.backend,
                default: shown.defaultWord,
                sandbox: shown.sandboxWord,
                state: liveness(r, shown.state),
                running: r.running,
                description: r.description,
              };
            }),
        ["name", "backend", "default", "sandbox", "state", "running", "description"],
        values.json,
      );
    });
    return EXIT.ok;
  },
};

function liveness(r: { attachedAt: number; heldUntil: number | null }, state: RunnerShown["state"]): string {
  if (state === "disconnected") return r.heldUntil ? `disconnected (name held ${Math.max(0, Math.ceil((r.heldUntil - Date.now()) / 1000))}s)` : "disconnected";
  if (state === "starts on first use") return state;
  return `attached ${age(r.attachedAt)} ago`;
}

type Pending = ResultOf<"proposal/list">["proposals"][number];

/** A project's pending proposals (a run's, with `run`), oldest first. */
async function pendingIn(client: SpoolClient, run?: string): Promise<Pending[]> {
  const proposals: Pending[] = [];
  let after: number | undefined;
  // Pages of 200; a person reads no more than a few pages, so 10 is the cap.
  for (let page = 0; page < 10; page++) {
    const reply = await client.call("proposal/list", { ...(run ? { run } : {}), limit: 200, ...(after ? { after } : {}) });
    proposals.push(...reply.proposals);
    if (reply.next === null) break;
    after = reply.next;
  }
  return proposals;
}

export const PENDING: Command = {
  help: usage(
    "spool pending [--run RUN | --all] [--json]",
    "Lists pending proposals, oldest first: the project's (every project's with --all, or outside any\nproject), with run, path and age, then what every client shows before a decision — tool, command,\nworking directory, extra environment, terminal, runner, sandbox mode, background, time limit — with\ncontrol characters shown escaped. Decide with `spool approve` or `spool reject` (alone when only\none is pending).",
    `  --run RUN           only this run's\n  --all               every project's\n${JSON_HELP}`,
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("pending", argv, {
      ...CLIENT_OPTIONS,
      ...JSON_OPTION,
      run: { type: "string" },
      all: { type: "boolean" },
    });
    if (values.help) return showHelp(PENDING.help);
    positionals("pending", rest, []);
    if (values.all && values.run) throw usageError("--run and --all exclude each other: --run names a run of this project");
    const groups: { project: string | null; proposals: Pending[]; defaultRunner: string | null }[] = [];
    const collect = async (client: SpoolClient, project: string | null, run?: string) => {
      const proposals = await pendingIn(client, run);
      if (proposals.length === 0) return;
      groups.push({ project, proposals, defaultRunner: defaultRunnerName((await client.call("runner/list", {})).runners) });
    };
    let across = Boolean(values.all);
    if (values.run) {
      await withClient(values, async (client) => collect(client, null, await resolveRun(client, values.run)));
    } else if (!across) {
      const { client, project, here } = await connectIfProject(values);
      try {
        if (project) await collect(client, null);
        else if (!here) across = true;
      } finally {
        client.close();
      }
    }
    if (across) await forEachProject(values, (client, name) => collect(client, name));
    const all = groups.flatMap((g) => g.proposals.map((p) => ({ ...(g.project ? { project: g.project } : {}), ...p })));
    if (values.json) {
      printRows(all, [], true);
      return EXIT.ok;
    }
    if (all.length === 0) {
      process.stdout.write(`nothing is pending${across ? " in any project" : ""}\n`);
      return EXIT.ok;
    }
    const colours = palette();
    // Facts are drawn on a reset terminal: nothing printed before (a command's output) sets how they show.
    resetTerminal();
    const blocks = groups.flatMap((g) =>
      g.proposals.map(
        (p) =>
          `${colours.bold(`${g.project ? `${escapeControl(g.project)}  ` : ""}${escapeControl(p.run)}  ${escapeControl(p.path)}`)}  ${colours.dim(`proposed ${age(p.createdAt)} ago`)}\n${factsText(p.producer, { defaultRunner: g.defaultRunner, indent: "  " })}\n`,
      ),
    );
    process.stdout.write(blocks.join("\n"));
    return EXIT.ok;
  },
};

/** A CONFLICT from run/resolve, told as what happened to the proposal. */
async function decidedAlready(client: SpoolClient, run: string, path: string, error: unknown): Promise<never> {
  if (!(error instanceof SpoolRpcError) || error.errorCode !== "CONFLICT") throw error;
  const [entry] = (await client.call("entry/list", { run, pattern: path })).entries;
  const p = entry?.producer ?? null;
  const by = p?.resolvedBy ? ` by ${escapeControl(p.resolvedBy)}` : "";
  const reason = p?.reason ? `: ${escapeControl(p.reason)}` : "";
  const word = p ? (p.decision === "accept" ? "accepted" : p.state) : "decided";
  throw new CliError(`${path} is no longer pending: it was ${word}${by}${reason}`, EXIT.failed);
}

/**
 * The proposal `spool approve` / `spool reject` decide: RUN and CMD resolved as short references; with neither,
 * the one pending proposal of the project (of every project outside one); with RUN alone, that run's only one.
 * A proposal not named exactly (see `exactly`) is shown before it is decided (issue 23: what runs is what a
 * person saw): approve asks for one key on a terminal and refuses without one; reject shows what it rejects.
 */
async function decide(
  command: "approve" | "reject",
  flags: ClientFlags,
  refs: string[],
  body: (client: SpoolClient, run: string, path: string) => Promise<number>,
): Promise<number> {
  if (refs.length > 2) throw usageError(`spool ${command}: unexpected argument "${refs[2]}" (see \`spool help ${command}\`)`);
  if (refs.length > 0) {
    return withClient(flags, async (client) => {
      // A run picked among several at a terminal was not named by RUN: its proposal is shown before it is decided.
      const { alias: run, chosen } = await resolveRunRef(client, refs[0]);
      const target = await resolveCommand(client, run, refs[1], { pending: refs[1] === undefined });
      if (chosen || !exactly(refs, run, target.path)) await showUnnamed(command, client, null, run, target.path);
      return body(client, run, target.path);
    });
  }
  const found: { project: string | null; run: string; path: string }[] = [];
  const { client, project, here } = await connectIfProject(flags);
  try {
    if (project) found.push(...(await pendingIn(client)).map((p) => ({ project: null, run: p.run, path: p.path })));
  } finally {
    client.close();
  }
  if (!here) {
    await forEachProject(flags, async (c, name) => {
      found.push(...(await pendingIn(c)).map((p) => ({ project: name, run: p.run, path: p.path })));
    });
  }
  if (found.length === 0) throw new CliError(`nothing is pending${here ? " in this project" : ""}`, EXIT.notFound);
  if (found.length > 1) {
    throw new CliError(
      `${found.length} proposals are pending; name one (\`spool pending\` shows them):\n${found
        .map((f) => `  spool ${command} ${f.project ? `--project ${escapeControl(f.project)} ` : ""}${escapeControl(f.run)} ${escapeControl(f.path)}`)
        .join("\n")}`,
      EXIT.usage,
    );
  }
  const only = found[0]!;
  return withClient(only.project ? { ...flags, project: only.project } : flags, async (c) => {
    await showUnnamed(command, c, only.project, only.run, only.path);
    return body(c, only.run, only.path);
  });
}

/**
 * Whether RUN CMD name one proposal whatever else arrives: RUN its whole name (or N for run-N) and CMD its
 * number in the run or its whole path. A prefix, a part of a path or an omitted CMD is resolved among what is
 * there now, and a proposal arriving meanwhile could be the one it finds.
 */
function exactly(refs: string[], run: string, path: string): boolean {
  const [runRef, cmdRef] = refs;
  const runExact = runRef === run || (runRef !== undefined && /^\d+$/.test(runRef) && run === `run-${Number(runRef)}`);
  return runExact && cmdRef !== undefined && (cmdRef === path || /^\d+$/.test(cmdRef));
}

/**
 * A proposal found rather than named: its facts, as `spool pending` shows them. Approve then asks for one key
 * pressed now (input typed before is thrown away); without a terminal to ask on it refuses, naming the exact
 * reference to give. Reject goes on (rejecting runs nothing). A proposal no longer pending goes on too: deciding
 * it fails with what happened to it.
 */
async function showUnnamed(command: "approve" | "reject", client: SpoolClient, project: string | null, run: string, path: string): Promise<void> {
  const entry = await client.call("entry/get", { run, path });
  if (entry.status !== ENTRY.proposed) return;
  const { runners } = await client.call("runner/list", {});
  const facts = factsText(proposalFacts(entry.attributes), { defaultRunner: defaultRunnerName(runners), indent: "  " });
  const number = (await runCommands(client, run)).find((c) => c.path === path)?.number;
  const where = `${project ? `${escapeControl(project)}  ` : ""}${escapeControl(run)}  ${escapeControl(path)}`;
  resetTerminal();
  if (command === "reject") {
    process.stdout.write(`${palette().bold(where)}\n${facts}\n`);
    return;
  }
  const exact = `spool approve ${project ? `--project ${escapeControl(project)} ` : ""}${escapeControl(run)} ${number ?? escapeControl(path)}`;
  if (!process.stdin.isTTY) {
    throw usageError(
      `spool approve: the proposal was not named exactly, so it is not accepted unseen (another may have arrived since you looked):\n${where}\n${facts}\nto accept this one, name it: \`${exact}\` (or its whole path)`,
    );
  }
  process.stdout.write(`${palette().bold(where)}\n${facts}\n`);
  if (!(await confirmKey("Accept this command? [y/N] "))) throw new CliError(`not accepted; \`${exact}\` accepts it`, EXIT.failed);
}

export const APPROVE: Command = {
  help: usage(
    "spool approve [RUN [CMD]] [--runner NAME]",
    `Accepts a pending proposal (see spool pending); its runner starts the command. Alone, it accepts
the only pending proposal (an error naming them when there are several); with RUN alone, that
run's only one. A proposal not named exactly (RUN's whole name or number and CMD's number or whole
path) is shown first and accepted only when you press y on the terminal; without a terminal it is
refused, naming the exact reference to give (another proposal may have arrived since you looked).

${REFS_HELP}`,
    "  --runner NAME       run it on this runner (default: the project's default runner)\n",
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("approve", argv, { ...CLIENT_OPTIONS, runner: { type: "string" } });
    if (values.help) return showHelp(APPROVE.help);
    return decide("approve", values, rest, async (client, run, path) => {
      const reply = await client
        .call("run/resolve", { run, path, decision: "accept", ...(values.runner ? { runner: values.runner } : {}) })
        .catch((error: unknown) => unknownRunner(client, values.runner, error))
        .catch((error: unknown) => decidedAlready(client, run, path, error));
      process.stdout.write(`${palette().green("accepted")} ${path}: running on ${reply.runner ?? "?"}; follow it with \`spool tail ${run} -f\`\n`);
      return EXIT.ok;
    });
  },
};

/** --runner naming no runner of the project: say which there are. */
async function unknownRunner(client: SpoolClient, runner: string | undefined, error: unknown): Promise<never> {
  if (!runner || !(error instanceof SpoolRpcError) || !["NO_RUNNER", "NOT_FOUND"].includes(error.errorCode ?? "")) throw error;
  const { runners } = await client.call("runner/list", {});
  if (runners.some((r) => r.name === runner)) throw error;
  const names = runners.map((r) => r.name);
  throw new CliError(
    `the project has no runner "${escapeControl(runner)}"${names.length ? ` — it has: ${names.join(", ")} (spool runners)` : " — it has none; attach one with `spool runner`"}`,
    EXIT.notFound,
  );
}

export const REJECT: Command = {
  help: usage(
    "spool reject [RUN [CMD]] [--reason TEXT]",
    `Rejects a pending proposal (see spool pending); the model is told why. Alone, it rejects the only
pending proposal; with RUN alone, that run's only one. A proposal not named exactly is shown as it is
rejected.

${REFS_HELP}`,
    "  --reason TEXT       why (the model reads it)\n",
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("reject", argv, { ...CLIENT_OPTIONS, reason: { type: "string" } });
    if (values.help) return showHelp(REJECT.help);
    return decide("reject", values, rest, async (client, run, path) => {
      await client
        .call("run/resolve", { run, path, decision: "reject", reason: values.reason ?? "rejected from the spool CLI" })
        .catch((error: unknown) => decidedAlready(client, run, path, error));
      process.stdout.write(`${palette().yellow("rejected")} ${path}\n`);
      return EXIT.ok;
    });
  },
};

export const CANCEL: Command = {
  help: usage(
    "spool cancel [RUN [CMD]] [--reason TEXT]",
    `Cancels a running command; its runner kills the process.

${REFS_HELP}`,
    "  --reason TEXT       why (kept in the channels' attributes)\n",
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("cancel", argv, { ...CLIENT_OPTIONS, reason: { type: "string" } });
    if (values.help) return showHelp(CANCEL.help);
    if (rest.length > 2) throw usageError(`spool cancel: unexpected argument "${rest[2]}" (see \`spool help cancel\`)`);
    return withClient(values, async (client) => {
      const run = await resolveRun(client, rest[0]);
      const { path } = await resolveCommand(client, run, rest[1]);
      const result = await client.call("stream/cancel", { run, path, ...(values.reason ? { reason: values.reason } : {}) });
      const colours = palette();
      if (result.changed) process.stdout.write(`${colours.yellow("cancelled")} ${path}\n`);
      else {
        const [log] = (await client.call("entry/list", { run, pattern: path })).entries;
        process.stdout.write(`${path} had already finished: ${endedWords(log, result.status)}\n`);
      }
      return EXIT.ok;
    });
  },
};

/** `spool abort RUN`: stops a run — its model call, its pending proposals, its running commands. */
export const ABORT: Command = {
  help: usage(
    "spool abort [RUN] [--reason TEXT]",
    `Aborts a run: stops its model, rejects its pending proposals and cancels its running commands.

${RUN_HELP}`,
    "  --reason TEXT       why (kept with the run)\n",
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("abort", argv, { ...CLIENT_OPTIONS, reason: { type: "string" } });
    if (values.help) return showHelp(ABORT.help);
    if (rest.length > 1) throw usageError(`spool abort: unexpected argument "${rest[1]}" (see \`spool help abort\`)`);
    return withClient(values, async (client) => {
      const run = await resolveRun(client, rest[0]);
      const result = await client.call("run/abort", { run, reason: values.reason ?? "aborted from the spool CLI" }).catch(async (error: unknown) => {
        if (!(error instanceof SpoolRpcError) || error.errorCode !== "CONFLICT") throw error;
        const { run: now } = await client.call("run/get", { run });
        throw new CliError(`${run} is ${runStatusWord(now.status)}: nothing left to abort`, EXIT.failed);
      });
      const parts = [
        result.rejected.length ? `rejected ${result.rejected.length} proposal${result.rejected.length === 1 ? "" : "s"}` : "",
        result.cancelled.length ? `cancelled ${result.cancelled.length} command${result.cancelled.length === 1 ? "" : "s"}` : "",
      ].filter(Boolean);
      process.stdout.write(`${palette().yellow("aborted")} ${run}${parts.length ? `: ${parts.join(", ")}` : ""}\n`);
      return EXIT.ok;
    });
  },
};

/** `spool show RUN`: the conversation and its commands, as `gh run view` shows a run. */
export const SHOW: Command = {
  help: usage(
    "spool show [RUN] [--json]",
    `Shows a run: its state, model and title, then the conversation — each prompt, the model's text,
and every command it proposed, numbered, with how it ended (or that it waits or runs).

${RUN_HELP}`,
    JSON_HELP,
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("show", argv, { ...CLIENT_OPTIONS, ...JSON_OPTION });
    if (values.help) return showHelp(SHOW.help);
    if (rest.length > 1) throw usageError(`spool show: unexpected argument "${rest[1]}" (see \`spool help show\`)`);
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
      const shown = new Set<string>();
      const commandLine = (c: (typeof commands)[number]) => {
        shown.add(c.path);
        const producer = producerOf(c);
        return `  ${colours.cyan(`#${c.number}`)} ${colours.bold(escapeControl(producer.command))}  ${colours.dim(`${c.path} · ${outcomeWords(producer)}`)}`;
      };
      for (const m of messages) {
        if (m.role === "user" && !m.note) out.push("", `${colours.bold("▌ prompt")} ${escapeControl(m.text ?? "")}`);
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
  },
};

export const TAIL: Command = {
  help: usage(
    "spool tail [RUN [CMD]] [-f [--after SEQ] | -n N | --input]",
    `Prints the output of a command: stdout to stdout, stderr to stderr (CMD may also be one channel's
path, sh://turn_1/…_1); what was typed to it only with --input. With -f it keeps printing until
the command ends, waiting first (and saying so) for a pending proposal to be decided; how a
command that did not succeed ended is said on stderr. Exits 0 when the command succeeded, 1 when
it failed, was cancelled or its proposal was rejected.

${REFS_HELP}`,
    "  -f, --follow        keep printing live output until it finishes\n  --after SEQ         with -f: start after this chunk number\n  -n, --lines N       without -f: only the last N lines of each channel\n  --input             without -f: its output and the lines typed to it, in the order it happened,\n                      each typed line after [typed]\n",
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("tail", argv, {
      ...CLIENT_OPTIONS,
      follow: { type: "boolean", short: "f" },
      after: { type: "string" },
      // -n as tail(1) has it.
      lines: { type: "string", short: "n" },
      input: { type: "boolean" },
    });
    if (values.help) return showHelp(TAIL.help);
    if (rest.length > 2) throw usageError(`spool tail: unexpected argument "${rest[2]}" (see \`spool help tail\`)`);
    if (values.after !== undefined && !values.follow) throw usageError("--after only works with -f (it says where following starts)");
    if (values.lines !== undefined && values.follow) throw usageError("--lines only works without -f");
    if (values.input && (values.follow || values.lines !== undefined))
      throw usageError("--input prints what is stored so far, in order: without -f or --lines (spool attach shows typing live)");
    const after = values.after === undefined ? 0 : Number(values.after);
    if (!Number.isInteger(after) || after < 0) throw usageError(`--after must be a chunk number (0 or more), got "${values.after}"`);
    const lines = values.lines === undefined ? undefined : Number(values.lines);
    if (lines !== undefined && (!Number.isInteger(lines) || lines < 1)) throw usageError(`--lines must be a positive whole number, got "${values.lines}"`);
    return withClient(values, async (client) => {
      const run = await resolveRun(client, rest[0]);
      const { path } = await resolveCommand(client, run, rest[1]);
      return tail(client, run, path, { follow: Boolean(values.follow), after, lines, input: Boolean(values.input) });
    });
  },
};

async function tail(
  client: SpoolClient,
  run: string,
  path: string,
  options: { follow: boolean; after: number; lines: number | undefined; input: boolean },
): Promise<number> {
  const [entry] = (await client.call("entry/list", { run, pattern: path })).entries.filter((e) => e.path === path);
  if (!entry) throw new CliError(`${run} has no entry ${path} (see \`spool entries ${run}\`)`, EXIT.notFound);
  const isLog = isLogEntry(entry);
  const log = isLog ? path : (entry.channel?.log ?? "");
  const channel = isLog ? undefined : entry.channel?.channel;
  if (!log || (!isLog && !Number.isInteger(channel))) throw new CliError(`${path} is not a command's output (see \`spool entries ${run}\`)`, EXIT.failed);
  if (isLog && entry.status === ENTRY.proposed) {
    if (!options.follow) {
      throw new CliError(
        `${path} is a pending proposal: nothing has run yet — approve it (\`spool approve ${run} ${path}\`) or wait for it with -f`,
        EXIT.failed,
      );
    }
    process.stderr.write(`${path} waits for a decision (spool approve ${run} ${path}, or spool reject); following once it is accepted\n`);
    const decided = await waitForDecision(client, run, path);
    if (decided.decision === "reject")
      throw new CliError(`${path} was rejected${decided.by ? ` by ${escapeControl(decided.by)}` : ""}: ${escapeControl(decided.reason ?? "")}`);
  } else if (isLog && entry.status === ENTRY.rejected) {
    const p = producerOf(entry);
    throw new CliError(`${path} was rejected${p.resolvedBy ? ` by ${escapeControl(p.resolvedBy)}` : ""}: ${escapeControl(p.reason ?? "")}`);
  }
  // On a terminal the output is made safe (src/cli/terminal-writer.ts); to a file or a pipe it goes byte for byte.
  const output = commandOutput();
  // stdout carries the command's stdout only: what was typed to it (channel 0) is shown with --input alone.
  // (The input channel named by its own path is what was asked for.)
  const out = (c: number, data: Uint8Array) => (c === 0 && isLog ? true : output.write(c, Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  if (options.input) {
    const got = await client.call("entry/get", { run, path: log, view: "transcript" });
    await drained(out(1, Buffer.from(got.body)), 1);
    output.end();
    if (got.truncated) process.stderr.write(`${path}: the transcript stops at the server's read limit; spool tail without --input prints all the output\n`);
    const channels = (await client.call("entry/list", { run })).entries.filter((e) => e.channel?.log === log && e.channel.channel !== 0);
    return outcome(channels.map((c) => c.status));
  }
  if (options.lines !== undefined) {
    const channels = isLog ? (await client.call("entry/list", { run })).entries.filter((e) => e.channel?.log === log && e.channel.channel !== 0) : [entry];
    for (const c of channels) {
      const channel = c.channel?.channel ?? 1;
      // Page by page, each written before the next is read (a slow reader slows the reading).
      await client.readLines(run, c.path, (bytes) => drained(out(channel, bytes), channel), { from: Math.max(1, c.lines - options.lines + 1) });
    }
    output.end();
    return outcome(channels.map((c) => c.status));
  }
  const watch = await client.watch({ run, path: log, ...(channel ? { channel } : {}), after: options.after, snapshot: !options.follow }, (chunk) =>
    out(channel ?? chunk.channel, chunk.data),
  );
  const ended = await watch.ended;
  if (!options.follow) await watch.close();
  output.end();
  const code = outcome([...ended.values()].map((e) => e.status));
  if (code !== EXIT.ok) {
    // Not silent: how it ended, from the log entry (a cancel's reason, the exit code, the signal).
    const [logEntry] = (await client.call("entry/list", { run, pattern: log })).entries;
    const status = [...ended.values()].find((e) => e.status !== ENTRY.done)?.status ?? ENTRY.failed;
    process.stderr.write(`${path}: ${endedWords(logEntry, status)}\n`);
  }
  return code;
}

/** Resolves once stdout (stderr for channel 2) has room again, when the write that returned `ok` filled it. */
function drained(ok: boolean, channel: number): Promise<void> | undefined {
  if (ok) return undefined;
  const stream = channel === 2 ? process.stderr : process.stdout;
  return new Promise((resolve) => {
    stream.once("drain", resolve);
    stream.once("close", resolve);
  });
}

/** 0 when every channel finished well; 1 when one failed or was cancelled; 0 for one still running (tail without -f). */
function outcome(statuses: number[]): number {
  return statuses.every((s) => s === ENTRY.done || s === ENTRY.streaming) ? EXIT.ok : EXIT.failed;
}

function waitForDecision(client: SpoolClient, run: string, path: string): Promise<{ decision: "accept" | "reject"; by?: string; reason?: string | null }> {
  return new Promise((resolve, reject) => {
    const off = client.on("run/resolved", (p) => {
      if (p.run !== run || p.path !== path) return;
      off();
      resolve({ decision: p.decision, by: p.resolvedBy, reason: p.reason });
    });
    // Decided between our read and our listening: read it again now that nothing can be missed.
    client
      .call("entry/list", { run, pattern: path })
      .then(({ entries }) => {
        const e = entries.find((x) => x.path === path);
        if (!e || e.status === ENTRY.proposed) return;
        off();
        const p = producerOf(e);
        resolve({ decision: e.status === ENTRY.rejected ? "reject" : "accept", by: p.resolvedBy ?? undefined, reason: p.reason });
      })
      .catch(reject);
  });
}

export const INIT: Command = {
  help: `Usage: spool init [NAME]

Makes this directory a Spool project's root: writes .spool/project.json naming the
project (NAME, default: derived from the directory's name). Commands run here or
below use that project. When the server is running, the project is registered
there too (a NAME the server already has for another directory is refused).

${CLIENT_HELP}`,
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("init", argv, { ...CLIENT_OPTIONS });
    if (values.help) return showHelp(INIT.help);
    if (values.project) throw usageError("spool init takes the project's name as its argument, not --project");
    if (rest.length > 1) throw usageError(`spool init: unexpected argument "${rest[1]}" (see \`spool help init\`)`);
    const here = workingDirectory();
    const made = writeMarker(here, rest[0]);
    process.stdout.write(`${made.existed ? "already a Spool project" : "initialized Spool project"} "${made.name}" in ${here} (${made.marker})\n`);
    try {
      await withClient(values, async () => undefined, { create: true });
      process.stdout.write(`registered on the server\n`);
    } catch (error) {
      if (explain(error, null).code === EXIT.connection) {
        process.stdout.write(`the server is not running; the project is registered when a command first uses it\n`);
        return EXIT.ok;
      }
      // The server has that name for another directory: leave no marker that every command would trip on.
      if (!made.existed) rmSync(made.marker);
      throw error;
    }
    return EXIT.ok;
  },
};

export function showHelp(text: string): number {
  process.stdout.write(text);
  return EXIT.ok;
}
