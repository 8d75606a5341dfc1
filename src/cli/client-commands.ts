import { rmSync } from "node:fs";
import type { SpoolClient } from "../client/spool-client.js";
import { SpoolRpcError } from "../client/spool-client.js";
import { ENTRY, entryStatusWord, runStatusWord } from "../core/status.js";
import { defaultRunnerName, factsText, proposalFacts } from "../protocol/proposal-facts.js";
import {
  age,
  CLIENT_HELP,
  CLIENT_OPTIONS,
  type ClientFlags,
  connectClient,
  connectionLost,
  escapeControl,
  JSON_OPTION,
  palette,
  parseCommand,
  printRows,
  workingDirectory,
} from "./common.js";
import { CliError, EXIT, explain, usageError } from "./errors.js";
import { writeMarker } from "./project.js";

export interface Command {
  help: string;
  run: (argv: string[]) => Promise<number>;
}

const usage = (line: string, text: string, extra = "") => `Usage: ${line}\n\n${text}\n\n${extra ? `Options:\n${extra}\n` : ""}${CLIENT_HELP}`;

const JSON_HELP = "  --json              print JSON instead of a table\n";

/** `12 running`: a status as a word, next to its number. */
export const entryStatus = (status: number) => `${entryStatusWord(status)} (${status})`;
const runStatus = (status: number) => `${runStatusWord(status)} (${status})`;

/** Channel numbers people read: 1 stdout, 2 stderr. */
export const channelName = (channel: unknown) =>
  channel === 1 ? "stdout" : channel === 2 ? "stderr" : channel === 0 ? "stdin" : channel == null ? "" : `channel ${channel}`;

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
  help: usage("spool runs [--json]", "Lists the project's runs, newest first.", JSON_HELP),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("runs", argv, { ...CLIENT_OPTIONS, ...JSON_OPTION });
    if (values.help) return showHelp(RUNS.help);
    positionals("runs", rest, []);
    await withClient(values, async (client) => {
      const { runs } = await client.call("run/list", {});
      printRows(
        values.json
          ? runs
          : runs.map((r) => ({ run: r.alias, status: runStatus(r.status), model: r.model, mode: r.mode, turn: r.turn, updated: `${age(r.updatedAt)} ago` })),
        ["run", "status", "model", "mode", "turn", "updated"],
        values.json,
      );
    });
    return EXIT.ok;
  },
};

export const ENTRIES: Command = {
  help: usage(
    "spool entries RUN [--pattern GLOB] [--json]",
    "Lists a run's entries (proposals, output channels, errors), oldest first.",
    `  --pattern GLOB      only paths matching it, e.g. 'sh://*'\n${JSON_HELP}`,
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("entries", argv, { ...CLIENT_OPTIONS, ...JSON_OPTION, pattern: { type: "string" } });
    if (values.help) return showHelp(ENTRIES.help);
    const [run] = positionals("entries", rest, ["RUN"]);
    await withClient(values, async (client) => {
      const { entries } = await client.call("entry/list", { run: run!, ...(values.pattern ? { pattern: values.pattern } : {}) });
      printRows(
        values.json
          ? entries
          : entries.map((e) => ({
              path: e.path,
              channel: channelName(e.attributes.channel),
              status: entryStatus(e.status),
              turn: e.turn,
              bytes: e.bytes,
              lines: e.lines,
            })),
        ["path", "channel", "status", "turn", "bytes", "lines"],
        values.json,
      );
    });
    return EXIT.ok;
  },
};

export const MODELS: Command = {
  help: usage("spool models [--json]", "Lists the model aliases the server knows (SPOOL_MODEL_<alias>).", JSON_HELP),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("models", argv, { ...CLIENT_OPTIONS, ...JSON_OPTION });
    if (values.help) return showHelp(MODELS.help);
    positionals("models", rest, []);
    await withClient(values, async (client) => {
      const { models } = await client.call("model/list", {});
      printRows(models, ["alias", "provider", "model", "baseUrl"], values.json);
    });
    return EXIT.ok;
  },
};

export const RUNNERS: Command = {
  help: usage(
    "spool runners [--json]",
    "Lists the runners of the project: backend, whether it is the default, its read-only sandbox,\nwhether it is attached or disconnected (its name held for it), and what it is running.",
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
          : runners.map((r) => ({
              name: r.name,
              backend: r.backend,
              default: r.default ? "yes" : "",
              sandbox: r.sandbox.readOnly ? "read-only" : "none",
              state: liveness(r),
              running: r.running,
              description: r.description,
            })),
        ["name", "backend", "default", "sandbox", "state", "running", "description"],
        values.json,
      );
    });
    return EXIT.ok;
  },
};

function liveness(r: { embedded: boolean; attachedAt: number; state: "attached" | "disconnected"; heldUntil: number | null }): string {
  if (r.state === "disconnected")
    return r.heldUntil ? `disconnected (name held ${Math.max(0, Math.ceil((r.heldUntil - Date.now()) / 1000))}s)` : "disconnected";
  if (r.embedded && r.attachedAt === 0) return "starts on first use";
  return `attached ${age(r.attachedAt)} ago`;
}

export const PENDING: Command = {
  help: usage(
    "spool pending [--run RUN] [--json]",
    "Lists the project's pending proposals, oldest first: run, path and age, then what every client\nshows before a decision — tool, command, working directory, extra environment, terminal, runner,\nsandbox mode, background, time limit — with control characters shown escaped. Decide with\n`spool approve` or `spool reject`.",
    `  --run RUN           only this run's\n${JSON_HELP}`,
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("pending", argv, { ...CLIENT_OPTIONS, ...JSON_OPTION, run: { type: "string" } });
    if (values.help) return showHelp(PENDING.help);
    positionals("pending", rest, []);
    await withClient(values, async (client) => {
      const proposals: Awaited<ReturnType<typeof client.call<"proposal/list">>>["proposals"] = [];
      let after: number | undefined;
      // Pages of 200; a person reads no more than a few pages, so 10 is the cap.
      for (let page = 0; page < 10; page++) {
        const reply = await client.call("proposal/list", { ...(values.run ? { run: values.run } : {}), limit: 200, ...(after ? { after } : {}) });
        proposals.push(...reply.proposals);
        if (reply.next === null) break;
        after = reply.next;
      }
      if (values.json || proposals.length === 0) {
        printRows(proposals, [], values.json);
        return;
      }
      const { runners } = await client.call("runner/list", {});
      const defaultRunner = defaultRunnerName(runners);
      const colours = palette();
      const blocks = proposals.map(
        (p) =>
          `${colours.bold(`${escapeControl(p.run)}  ${escapeControl(p.path)}`)}  ${colours.dim(`proposed ${age(p.createdAt)} ago`)}\n${factsText(proposalFacts(p.attributes), { defaultRunner, indent: "  " })}\n`,
      );
      process.stdout.write(blocks.join("\n"));
    });
    return EXIT.ok;
  },
};

/** A CONFLICT from run/resolve, told as what happened to the proposal. */
async function decidedAlready(client: SpoolClient, run: string, path: string, error: unknown): Promise<never> {
  if (!(error instanceof SpoolRpcError) || error.errorCode !== "CONFLICT") throw error;
  const [entry] = (await client.call("entry/list", { run, pattern: path })).entries;
  const a = entry?.attributes ?? {};
  const by = a.resolvedBy ? ` by ${escapeControl(String(a.resolvedBy))}` : "";
  const reason = a.reason ? `: ${escapeControl(String(a.reason))}` : "";
  const word = entry ? (entry.status === ENTRY.done ? "accepted" : entryStatusWord(entry.status)) : "decided";
  throw new CliError(`${path} is no longer pending: it was ${word}${by}${reason}`, EXIT.failed);
}

export const APPROVE: Command = {
  help: usage(
    "spool approve RUN PATH [--runner NAME]",
    "Accepts a pending proposal (see spool pending); its runner starts the command.",
    "  --runner NAME       run it on this runner (default: the project's default runner)\n",
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("approve", argv, { ...CLIENT_OPTIONS, runner: { type: "string" } });
    if (values.help) return showHelp(APPROVE.help);
    const [run, path] = positionals("approve", rest, ["RUN", "PATH"]);
    return withClient(values, async (client) => {
      const reply = await client
        .call("run/resolve", { run: run!, path: path!, decision: "accept", ...(values.runner ? { runner: values.runner } : {}) })
        .catch((error: unknown) => decidedAlready(client, run!, path!, error));
      process.stdout.write(`${palette().green("accepted")} ${path}: running on ${reply.runner ?? "?"}; follow it with \`spool tail ${run} ${path} -f\`\n`);
      return EXIT.ok;
    });
  },
};

export const REJECT: Command = {
  help: usage(
    "spool reject RUN PATH [--reason TEXT]",
    "Rejects a pending proposal (see spool pending); the model is told why.",
    "  --reason TEXT       why (the model reads it)\n",
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("reject", argv, { ...CLIENT_OPTIONS, reason: { type: "string" } });
    if (values.help) return showHelp(REJECT.help);
    const [run, path] = positionals("reject", rest, ["RUN", "PATH"]);
    return withClient(values, async (client) => {
      await client
        .call("run/resolve", { run: run!, path: path!, decision: "reject", reason: values.reason ?? "rejected from the spool CLI" })
        .catch((error: unknown) => decidedAlready(client, run!, path!, error));
      process.stdout.write(`${palette().yellow("rejected")} ${path}\n`);
      return EXIT.ok;
    });
  },
};

export const CANCEL: Command = {
  help: usage(
    "spool cancel RUN PATH [--reason TEXT]",
    "Cancels a running producer (PATH is its log path); its runner kills the process.",
    "  --reason TEXT       why (kept in the channels' attributes)\n",
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("cancel", argv, { ...CLIENT_OPTIONS, reason: { type: "string" } });
    if (values.help) return showHelp(CANCEL.help);
    const [run, path] = positionals("cancel", rest, ["RUN", "PATH"]);
    return withClient(values, async (client) => {
      const result = await client.call("stream/cancel", { run: run!, path: path!, ...(values.reason ? { reason: values.reason } : {}) });
      const colours = palette();
      process.stdout.write(result.changed ? `${colours.yellow("cancelled")} ${path}\n` : `${path} had already finished: ${entryStatus(result.status)}\n`);
      return EXIT.ok;
    });
  },
};

export const TAIL: Command = {
  help: usage(
    "spool tail RUN PATH [-f [--after SEQ]] [--lines N]",
    "Prints the output of a producer: PATH is its log path (log://turn_1/sh/…: stdout to stdout,\nstderr to stderr) or one of its channels (sh://turn_1/…_1). With -f it keeps printing until the\ncommand ends, waiting first for a pending proposal to be decided. Exits 0 when the command\nsucceeded, 1 when it failed, was cancelled or its proposal was rejected.",
    "  -f, --follow        keep printing live output until it finishes\n  --after SEQ         with -f: start after this chunk number\n  --lines N           without -f: only the last N lines of each channel\n",
  ),
  run: async (argv) => {
    const { values, positionals: rest } = parseCommand("tail", argv, {
      ...CLIENT_OPTIONS,
      follow: { type: "boolean", short: "f" },
      after: { type: "string" },
      lines: { type: "string" },
    });
    if (values.help) return showHelp(TAIL.help);
    const [run, path] = positionals("tail", rest, ["RUN", "PATH"]);
    if (values.after !== undefined && !values.follow) throw usageError("--after only works with -f (it says where following starts)");
    if (values.lines !== undefined && values.follow) throw usageError("--lines only works without -f");
    const after = values.after === undefined ? 0 : Number(values.after);
    if (!Number.isInteger(after) || after < 0) throw usageError(`--after must be a chunk number (0 or more), got "${values.after}"`);
    const lines = values.lines === undefined ? undefined : Number(values.lines);
    if (lines !== undefined && (!Number.isInteger(lines) || lines < 1)) throw usageError(`--lines must be a positive whole number, got "${values.lines}"`);
    return withClient(values, (client) => tail(client, run!, path!, { follow: Boolean(values.follow), after, lines }));
  },
};

async function tail(client: SpoolClient, run: string, path: string, options: { follow: boolean; after: number; lines: number | undefined }): Promise<number> {
  const [entry] = (await client.call("entry/list", { run, pattern: path })).entries.filter((e) => e.path === path);
  if (!entry) throw new CliError(`${run} has no entry ${path} (see \`spool entries ${run}\`)`, EXIT.notFound);
  const isLog = path.startsWith("log://");
  const log = isLog ? path : String(entry.attributes.log ?? "");
  const channel = isLog ? undefined : Number(entry.attributes.channel);
  if (!log || (!isLog && !Number.isInteger(channel))) throw new CliError(`${path} is not a command's output (see \`spool entries ${run}\`)`, EXIT.failed);
  if (isLog && entry.status === ENTRY.proposed) {
    if (!options.follow) {
      throw new CliError(
        `${path} is a pending proposal: nothing has run yet — approve it (\`spool approve ${run} ${path}\`) or wait for it with -f`,
        EXIT.failed,
      );
    }
    const decided = await waitForDecision(client, run, path);
    if (decided.decision === "reject")
      throw new CliError(`${path} was rejected${decided.by ? ` by ${escapeControl(decided.by)}` : ""}: ${escapeControl(decided.reason ?? "")}`);
  } else if (isLog && entry.status === ENTRY.rejected) {
    throw new CliError(
      `${path} was rejected${entry.attributes.resolvedBy ? ` by ${escapeControl(String(entry.attributes.resolvedBy))}` : ""}: ${escapeControl(String(entry.attributes.reason ?? ""))}`,
    );
  }
  const out = (c: number, data: Buffer) => (c === 2 ? process.stderr : process.stdout).write(data);
  if (options.lines !== undefined) {
    const channels = isLog ? (await client.call("entry/list", { run })).entries.filter((e) => e.attributes.log === log) : [entry];
    for (const c of channels) {
      const got = await client.call("entry/get", { run, path: c.path, tail: options.lines, encoding: "base64" });
      out(Number(c.attributes.channel), Buffer.from(got.body, "base64"));
    }
    return outcome(channels.map((c) => c.status));
  }
  const watch = await client.watch({ run, path: log, ...(channel ? { channel } : {}), after: options.after, snapshot: !options.follow }, (chunk) =>
    out(channel ?? chunk.channel, chunk.data),
  );
  const ended = await watch.ended;
  if (!options.follow) await watch.close();
  return outcome([...ended.values()].map((e) => e.status));
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
        resolve({
          decision: e.status === ENTRY.rejected ? "reject" : "accept",
          by: e.attributes.resolvedBy ? String(e.attributes.resolvedBy) : undefined,
          reason: e.attributes.reason ? String(e.attributes.reason) : null,
        });
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
