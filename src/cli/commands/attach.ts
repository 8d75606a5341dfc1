import type { SpoolClient } from "../../client/spool-client.js";
import { SpoolRpcError } from "../../client/spool-client.js";
import { ENTRY } from "../../protocol/status.js";
import { producerOf } from "../../protocol/views.js";
import { commandOf, defineCommand } from "../command-spec.js";
import { connectClient, connectionLost, escapeControl } from "../common.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { resolveCommand, resolveRun } from "../refs.js";
import { ATTACH_START, resetTerminal } from "../terminal-writer.js";
import { endedWords } from "../words.js";
import { INPUT_PART_BYTES } from "./input.js";
import { ReplayedQueries } from "./replayed-queries.js";
import { TypedLines } from "./typed-lines.js";

/** Ctrl-]: what detaches, as telnet has it. */
const DETACH = 0x1d;

/** Input read from the terminal and not yet taken by the server; past it, reading pauses. */
const MAX_PENDING_BYTES = 256 * 1024;

const ATTACH_SPEC = defineCommand({
  name: "attach",
  usage: "spool attach [RUN [CMD]]",
  about: `Connects this terminal to a running command (RUN and CMD as spool tail takes them; alone,
the latest command of the latest run):
prints its output so far and then live, and sends what you type to its input. A command
proposed with a terminal (tty) gets your keys as you press them (raw mode: Ctrl-C goes
to the command) and this terminal's size, also when it changes. Otherwise lines are
sent as you finish them, Ctrl-D ends its input and Ctrl-C sends it SIGINT.

Ctrl-] detaches; the command keeps running. Typed to a command without a terminal, a
line is edited here (Backspace, Ctrl-U) and sent with a newline when Enter ends it,
whatever the terminal's settings make of Enter. When the command ends, says how, and
exits: 0 when it succeeded, 1 otherwise.`,
  connects: true,
  maxArgs: 2,
  options: {},
});

export const ATTACH = commandOf(ATTACH_SPEC, async (values, positionals) => {
  const { client } = await connectClient(values);
  try {
    const run = await resolveRun(client, positionals[0]);
    const { path } = await resolveCommand(client, run, positionals[1]);
    return await Promise.race([attach(client, run, path), connectionLost(client, "while attached")]);
  } finally {
    client.close();
  }
});

async function attach(client: SpoolClient, run: string, path: string): Promise<number> {
  const log = await attachable(client, run, path);
  const tty = log.tty !== null;
  const stdin = process.stdin;
  const raw = tty && stdin.isTTY === true;
  /** A command without a terminal, typed to from one: lines edited here (src/cli/commands/typed-lines.ts), the terminal raw. */
  const lineMode = !tty && stdin.isTTY === true;

  let detach!: () => void;
  const detached = new Promise<"detached">((resolve) => {
    detach = () => resolve("detached");
  });
  const input = inputSender(client, run, path, stdin);

  // This terminal's title is kept on its stack, for the one the command may set: taken back when the attach ends.
  const ownScreen = process.stdout.isTTY === true;
  if (ownScreen) process.stdout.write(ATTACH_START);
  const watch = await watchOutput(client, run, path);
  const onResize = () => input.control(() => client.resize(run, path, { cols: process.stdout.columns, rows: process.stdout.rows }));
  const onInterrupt = () => input.control(() => client.signal(run, path, "INT"));
  const onEnd = () => input.control(() => client.eof(run, path));
  const lines = lineMode
    ? new TypedLines({
        echo: (text) => process.stderr.write(text),
        send: (text) => input.send(Buffer.from(text)),
        eof: onEnd,
        interrupt: onInterrupt,
        detach: () => detach(),
      })
    : null;
  const onData = (data: Buffer) => {
    if (lines) return lines.push(data);
    const at = data.indexOf(DETACH);
    if (at === -1) return input.send(data);
    if (at > 0) input.send(data.subarray(0, at));
    detach();
  };
  process.stderr.write(`attached to ${path}${log.tty ? ` (a terminal ${log.tty.cols}x${log.tty.rows})` : ""}; Ctrl-] detaches\n`);
  if (raw) {
    stdin.setRawMode(true);
    if (process.stdout.isTTY) {
      onResize();
      process.stdout.on("resize", onResize);
    }
  } else if (lineMode) {
    stdin.setRawMode(true);
    process.on("SIGINT", onInterrupt);
  }
  stdin.on("data", onData);
  stdin.once("end", onEnd);
  stdin.resume();
  try {
    const how = await Promise.race([watch.ended, detached]);
    if (how === "detached") {
      await input.sent();
      process.stderr.write(`\r\ndetached from ${path}; it keeps running (\`spool attach ${run} ${path}\` again, or \`spool tail ${run} ${path} -f\`)\n`);
      return EXIT.ok;
    }
    const ends = [...how.values()];
    const status = ends.find((end) => end.status !== ENTRY.done)?.status ?? ENTRY.done;
    const [entry] = (await client.call("entry/list", { run, pattern: path })).entries;
    process.stderr.write(`${raw || lineMode ? "\r\n" : ""}${path} ended: ${endedWords(entry, status)}\n`);
    return status === ENTRY.done ? EXIT.ok : EXIT.failed;
  } finally {
    stdin.off("data", onData);
    stdin.off("end", onEnd);
    process.stdout.off("resize", onResize);
    process.off("SIGINT", onInterrupt);
    if (raw || lineMode) stdin.setRawMode(false);
    stdin.pause();
    await watch.close();
    // The command's output went raw (its own screen): whatever state it left the terminal in ends with the attach,
    // the modes it set (mouse, keypad, bracketed paste, focus events, the kitty keyboard's) and its title included.
    resetTerminal(process.stdout, { modes: ownScreen });
  }
}

/** The command's producer, when it is one an attach can follow: a log path that was not left pending or rejected. */
async function attachable(client: SpoolClient, run: string, path: string): Promise<ReturnType<typeof producerOf>> {
  if (!path.startsWith("log://")) throw usageError(`spool attach takes a command's log path (log://turn_N/sh/…), not ${path}`);
  const log = producerOf(await client.call("entry/get", { run, path, tail: 1 }));
  if (log.state === "proposed") {
    throw new CliError(`${path} is a pending proposal: nothing runs yet — approve it first (\`spool approve ${run} ${path}\`)`, EXIT.failed);
  }
  if (log.state === "rejected") throw new CliError(`${path} was rejected: ${escapeControl(log.reason ?? "")}`, EXIT.failed);
  return log;
}

/**
 * What goes to the command, in order, one call after another: typed bytes (in parts of INPUT_PART_BYTES; reading
 * `stdin` pauses while more than MAX_PENDING_BYTES wait) and controls (resize, a signal, the end of input). A failure
 * is said once; the command ending while input was on its way is how an attach ends, not an error.
 */
function inputSender(client: SpoolClient, run: string, path: string, stdin: NodeJS.ReadStream) {
  let reported = false;
  const failed = (error: unknown) => {
    if (error instanceof SpoolRpcError && error.errorCode === "STREAM_CLOSED") return;
    if (reported) return;
    reported = true;
    process.stderr.write(`\r\nspool attach: ${error instanceof Error ? error.message : String(error)}\r\n`);
  };
  let chain: Promise<unknown> = Promise.resolve();
  let pending = 0;
  return {
    send(data: Buffer): void {
      for (let at = 0; at < data.length; at += INPUT_PART_BYTES) {
        const part = data.subarray(at, at + INPUT_PART_BYTES);
        pending += part.length;
        if (pending > MAX_PENDING_BYTES) stdin.pause();
        chain = chain
          .then(() => client.input(run, path, part))
          .catch(failed)
          .finally(() => {
            pending -= part.length;
            if (stdin.isPaused() && pending <= MAX_PENDING_BYTES / 4) stdin.resume();
          });
      }
    },
    control(action: () => Promise<unknown>): void {
      chain = chain.then(action).catch(failed);
    },
    /** Resolves once everything sent so far has been taken (or refused). */
    sent: () => chain,
  };
}

/**
 * Watches the command's output onto this terminal: its output only — what was typed to it (channel 0, replayed too)
 * is no output of it — and what was stored before without the questions it asked its terminal then (their answers
 * would come back here as typing).
 */
function watchOutput(client: SpoolClient, run: string, path: string) {
  const replays = new Map<number, ReplayedQueries>();
  return client.watch({ run, path }, (chunk) => {
    if (chunk.channel === 0) return;
    let queries = replays.get(chunk.channel);
    if (!queries) replays.set(chunk.channel, (queries = new ReplayedQueries()));
    const data = queries.push(chunk.data, chunk.replayed);
    if (data.length > 0) (chunk.channel === 2 ? process.stderr : process.stdout).write(data);
  });
}
