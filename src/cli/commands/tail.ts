import type { SpoolClient } from "../../client/spool-client.js";
import { ENTRY } from "../../protocol/status.js";
import { isLogEntry, producerOf } from "../../protocol/views.js";
import { commandOf, defineCommand } from "../command-spec.js";
import { escapeControl, withClient } from "../common.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { REFS_HELP, resolveCommand, resolveRun } from "../refs.js";
import { commandOutput } from "../terminal-writer.js";
import { endedWords } from "../words.js";
import { whenReaderGone } from "./reader-gone.js";
import { grepOptions, grepOutput } from "./tail-grep.js";

const TAIL_SPEC = defineCommand({
  name: "tail",
  usage: "spool tail [RUN [CMD]] [-f [--after SEQ] | -n N | --input | --grep PATTERN [-C N] [-i] [-E]]",
  about: `Prints the output of a command: stdout to stdout, stderr to stderr (CMD may also be one channel's
path, sh://turn_1/…_1); what was typed to it only with --input. With -f it keeps printing until
the command ends (into a pipe, until its reader leaves: spool tail -f | head -2), waiting first (and saying so) for a pending proposal to be decided; how a
command that did not succeed ended is said on stderr. Exits 0 when the command succeeded, 1 when
it failed, was cancelled or its proposal was rejected.

With --grep it prints the lines of the stored output holding PATTERN instead, as grep -n does
(N:line, N-context, -- between groups; a command's channels merged in the order they were
stored), searched by the server (entry/search); exits 0 when a line matched, 1 when none did.

${REFS_HELP}`,
  connects: true,
  maxArgs: 2,
  options: {
    follow: { type: "boolean", short: "f", help: "keep printing live output until it finishes" },
    after: { type: "string", arg: "SEQ", help: "with -f: start after this chunk number" },
    // -n as tail(1) has it.
    lines: { type: "string", short: "n", arg: "N", help: "without -f: only the last N lines of each channel" },
    input: { type: "boolean", help: "without -f: its output and the lines typed to it, in the order it happened,\neach typed line after [typed]" },
    grep: { type: "string", arg: "PATTERN", help: "only the lines holding PATTERN (plain text), with their line numbers" },
    context: { type: "string", short: "C", arg: "N", help: "with --grep: N lines of context around each match" },
    "ignore-case": { type: "boolean", short: "i", help: "with --grep: letters match in either case" },
    regex: { type: "boolean", short: "E", help: "with --grep: PATTERN is a regular expression (RE2 syntax)" },
  },
});

export const TAIL = commandOf(TAIL_SPEC, async (values, rest) => {
  if (values.after !== undefined && !values.follow) throw usageError("--after only works with -f (it says where following starts)");
  if (values.lines !== undefined && values.follow) throw usageError("--lines only works without -f");
  if (values.input && (values.follow || values.lines !== undefined))
    throw usageError("--input prints what is stored so far, in order: without -f or --lines (spool attach shows typing live)");
  const after = values.after === undefined ? 0 : Number(values.after);
  if (!Number.isInteger(after) || after < 0) throw usageError(`--after must be a chunk number (0 or more), got "${values.after}"`);
  const lines = values.lines === undefined ? undefined : Number(values.lines);
  if (lines !== undefined && (!Number.isInteger(lines) || lines < 1)) throw usageError(`--lines must be a positive whole number, got "${values.lines}"`);
  const grep = grepOptions(values);
  return withClient(values, async (client) => {
    const run = await resolveRun(client, rest[0]);
    const { path } = await resolveCommand(client, run, rest[1]);
    if (grep) return grepOutput(client, run, path, grep);
    return tail(client, run, path, { follow: Boolean(values.follow), after, lines, input: Boolean(values.input) });
  });
});

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
  // Followed into a pipe whose reader left (`spool tail -f | head -2`): done, though the command prints nothing more.
  let stopWatchingReader = () => {};
  const readerGone = new Promise<null>((resolve) => {
    if (options.follow) stopWatchingReader = whenReaderGone(1, () => resolve(null));
  });
  const ended = await Promise.race([watch.ended, readerGone]).finally(() => stopWatchingReader());
  if (ended === null) {
    await watch.close();
    return EXIT.ok;
  }
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

/** 0 when every channel finished well; 1 when one failed or was cancelled; 0 for one still running or queued (tail without -f). */
function outcome(statuses: number[]): number {
  return statuses.every((s) => s === ENTRY.done || s === ENTRY.streaming || s === ENTRY.queued) ? EXIT.ok : EXIT.failed;
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
