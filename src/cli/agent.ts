import { createInterface, type Interface } from "node:readline";
import type { ReadStream } from "node:tty";
import { type SpoolClient, SpoolRpcError } from "../client/spool-client.js";
import type { SpoolNotifications } from "../protocol/notifications.js";
import { defaultRunnerName, factsText } from "../protocol/proposal-facts.js";
import { OPEN_RUN, RUN, runStatusWord } from "../protocol/status.js";
import { type Producer, producerOf } from "../protocol/views.js";
import { CLIENT_HELP, CLIENT_OPTIONS, connectClient, connectionLost, escapeControl, palette, parseCommand } from "./common.js";
import { CliError, EXIT, usageError } from "./errors.js";
import { runCommands } from "./refs.js";
import { TerminalWriter } from "./terminal-writer.js";
import { TypedInput } from "./typed-input.js";
import { endedWords } from "./words.js";

export const agentHelp = (mode: "ask" | "act") => `Usage: spool ${mode} "PROMPT" --model ALIAS [--run ALIAS] [--yes | --answers-from-stdin]
       spool ${mode} --run ALIAS          follow a run again (no PROMPT)

${mode === "ask" ? "Asks a model about the project with read-only tools (env, get, wait)." : "Gives a model a task; it proposes shell commands that you accept or reject."}
Shows the model's text as it streams, each proposal (tool, command, working
directory, extra environment, terminal, runner, sandbox mode, background, time
limit, control characters shown as escapes) with a prompt to accept (y), reject
(n) or always accept it in this run (a: the same command in the same directory
with the same environment), and the live output of accepted commands (stderr
apart from stdout), then how it ended (done, exit 0 / failed, exit 2 /
cancelled: why). Proposals can also be decided from anywhere else (spool
pending / approve / reject, the web view): the prompt moves on, and a command
accepted elsewhere is followed here all the same (Ctrl-C cancels it).
On a terminal the model's text and a command's output are drawn under a │
gutter, their colours kept and any other terminal control shown as text
(^[[2J), never obeyed; each proposal is drawn on a reset terminal.

On a terminal the prompt takes one key pressed after it appears: whatever was
typed before (for a command, or ahead) is discarded, never taken as an answer.
Typing while a command runs does not reach it: answer it with spool attach RUN
PATH or spool input RUN PATH TEXT. When stdin is not a terminal nothing is read
from it: proposals wait for a decision from another client, unless --yes or
--answers-from-stdin says otherwise.

Without a PROMPT, --run follows that run again: it offers the proposals still
pending and shows what the run does until it is idle.

Ctrl-C cancels the running command; at a prompt, or a second time, it aborts
the run. Exits 0 when the run finishes, 1 when it fails, 3 when the connection
to the server is lost (the run stays on the server: follow it again with --run
once the server answers), 130 when it is aborted. A new run is named run-N.

Options:
  --model ALIAS       a model alias (spool models; "demo" with spool serve --demo-model)
  --run ALIAS         continue this run (created if it does not exist)
  --yes, -y           accept every proposal without asking
  --answers-from-stdin
                      stdin is not a terminal and holds the answers: one line
                      (y, n or a) per proposal, in order; its end rejects
${CLIENT_HELP}`;

type Proposal = SpoolNotifications["run/proposal"];

/**
 * Where answers to "Accept?" come from:
 * - `keys`: stdin is a terminal. Each question discards whatever was typed before it was drawn (in this
 *   process's buffer and in the terminal's), then takes one key pressed after it: keys typed for a command,
 *   or ahead of a question, never answer a question the person has not seen.
 * - `lines`: `--answers-from-stdin` (stdin not a terminal): one line per question, in order; end of input
 *   answers no.
 * - `none`: stdin is not a terminal and no flag says it holds answers: nothing is read; proposals wait for
 *   a decision from another client.
 */
type AnswerSource = "keys" | "lines" | "none";

/** One answer per question (null: no answer will come here). Ctrl-C at a question becomes SIGINT. */
class Questions {
  #rl: Interface | null = null;
  #lines: string[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #closed = false;
  #stopKeys: (() => void) | null = null;
  /** A second, non-blocking handle on the terminal, to empty its input queue before each question. */
  #typed = new TypedInput((text) => this.note(text));

  constructor(
    readonly source: AnswerSource,
    private readonly note: (text: string) => void,
    /** Spool's own text on the terminal; `sameLine`: an answer echoed after its question. */
    private readonly write: (text: string, sameLine?: boolean) => void,
  ) {}

  ask(question: string): Promise<string | null> {
    if (this.source === "keys") return this.#askKey(question);
    this.write(question);
    if (this.source === "none") return new Promise((resolve) => (this.#waiting = resolve));
    if (!this.#rl) {
      this.#rl = createInterface({ input: process.stdin });
      this.#rl.on("line", (line) => {
        if (this.#waiting) this.#answer(line);
        else this.#lines.push(line);
      });
      this.#rl.on("close", () => {
        this.#closed = true;
        this.#answer(null);
      });
    }
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  #askKey(question: string): Promise<string | null> {
    const stdin = process.stdin as ReadStream;
    // Raw mode first: a line typed without Enter (held by the terminal until now) becomes readable, and is discarded with the rest.
    stdin.setRawMode(true);
    const dropped = this.#typed.discard(stdin);
    if (dropped > 0) this.note(`  (ignored ${dropped} ${dropped === 1 ? "byte" : "bytes"} typed before this question)`);
    this.write(question);
    return new Promise((resolve) => {
      this.#waiting = resolve;
      const onData = (chunk: Buffer) => {
        const keys = chunk.toString("utf8").replace(/[\r\n]+$/, "");
        if (keys.includes("\u0003")) {
          this.write("^C\n", true);
          process.emit("SIGINT");
          return;
        }
        if (keys === "\u0004") {
          this.write("^D\n", true);
          this.#answer("n");
          return;
        }
        // One key, pressed now; a paste or an escape sequence is not an answer.
        const key = /^[yna]$/i.test(keys) ? keys.toLowerCase() : "?";
        this.write(`${key === "?" ? "" : key}\n`, true);
        this.#answer(key);
      };
      stdin.on("data", onData);
      stdin.resume();
      this.#stopKeys = () => {
        stdin.off("data", onData);
        stdin.pause();
        stdin.setRawMode(false);
      };
    });
  }

  /** Whether a question waits for its answer. */
  get asking(): boolean {
    return this.#waiting !== null;
  }

  /** Ends the question being asked: it is answered null (nobody will answer it here). */
  withdraw(): void {
    this.#answer(null);
  }

  #answer(line: string | null): void {
    this.#stopKeys?.();
    this.#stopKeys = null;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.(line);
  }

  close(): void {
    this.#stopKeys?.();
    this.#stopKeys = null;
    this.#rl?.close();
    this.#typed.close();
  }
}

/**
 * A spinner on stderr while the model thinks; only on a terminal, and only on an empty line: a line of the
 * model's text that has not ended yet is never drawn over nor erased (`atLineStart` says where the cursor is).
 */
function spinner(enabled: boolean, atLineStart: () => boolean) {
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let timer: NodeJS.Timeout | null = null;
  let drawn = false;
  let i = 0;
  return {
    start() {
      if (!enabled || timer) return;
      timer = setInterval(() => {
        if (!drawn && !atLineStart()) return;
        drawn = true;
        process.stderr.write(`\r${frames[i++ % frames.length]} thinking…`);
      }, 80);
    },
    stop() {
      if (!timer) return;
      clearInterval(timer);
      timer = null;
      // Erase only what the spinner drew, on its own line.
      if (drawn) process.stderr.write("\r\u001b[K");
      drawn = false;
    },
  };
}

export function agentCommand(mode: "ask" | "act") {
  return async (argv: string[]): Promise<number> => {
    const { values, positionals } = parseCommand(mode, argv, {
      ...CLIENT_OPTIONS,
      model: { type: "string" },
      run: { type: "string" },
      yes: { type: "boolean", short: "y" },
      "answers-from-stdin": { type: "boolean" },
    });
    if (values.help) {
      process.stdout.write(agentHelp(mode));
      return EXIT.ok;
    }
    const prompt = positionals.join(" ").trim();
    if (!prompt && !values.run) throw usageError(`spool ${mode} needs a PROMPT, or --run ALIAS to follow a run again (see \`spool help ${mode}\`)`);
    if (!prompt && values.model) throw usageError("--model needs a PROMPT: it chooses the model of a new run");
    const fromStdin = Boolean(values["answers-from-stdin"]);
    if (fromStdin && values.yes) throw usageError("--yes and --answers-from-stdin exclude each other: --yes accepts everything, the other reads answers");
    if (fromStdin && process.stdin.isTTY)
      throw usageError("--answers-from-stdin is for answers piped in; on a terminal each prompt takes a key pressed after it appears");
    const answers: AnswerSource = values.yes ? "none" : fromStdin ? "lines" : process.stdin.isTTY ? "keys" : "none";
    const { client } = await connectClient(values, { name: `spool-${mode}`, create: Boolean(prompt) });
    try {
      return await drive(client, mode, prompt, { model: values.model, run: values.run, yes: Boolean(values.yes), answers });
    } finally {
      client.close();
    }
  };
}

/** An unknown --model, told with the aliases there are and how to define one. */
async function unknownModel(client: SpoolClient, model: string, error: unknown): Promise<never> {
  const data = error instanceof SpoolRpcError ? (error.data as { model?: unknown } | undefined) : undefined;
  if (!(error instanceof SpoolRpcError) || data?.model !== model) throw error;
  if (error.errorCode !== "INVALID_PARAMS") throw new CliError(`--model ${escapeControl(model)}: ${error.message}`, EXIT.failed);
  const known = (await client.call("model/list", {}).catch(() => ({ models: [] }))).models.map((m) => m.alias);
  const name = model.toUpperCase().replace(/-/g, "_");
  throw new CliError(
    `the server has no model "${escapeControl(model)}" (${known.length ? `it has: ${known.map(escapeControl).join(", ")}` : "it has none"}). ` +
      `Define it where the server runs, then restart it: SPOOL_MODEL_${name}=openai/<model-id> with OPENAI_API_KEY ` +
      `(or ollama/<model>), or start it with \`spool serve --demo-model\` for the built-in "demo"`,
    EXIT.usage,
  );
}

/** How long to wait for the server to confirm an abort before leaving anyway. */
const ABORT_WAIT_MS = 3_000;

async function drive(
  client: SpoolClient,
  mode: "ask" | "act",
  prompt: string,
  options: { model?: string; run?: string; yes: boolean; answers: AnswerSource },
): Promise<number> {
  const colours = palette();
  const errColours = palette(process.stderr);
  /** Every byte to the terminal: the model's text and the commands' output made safe, each in a block of its own, under a gutter. */
  const screen = new TerminalWriter(process.stdout, process.stderr, { colour: (gutter) => (colours.on ? `\u001b[2m${gutter}\u001b[22m` : gutter) });
  const spin = spinner(Boolean(process.stderr.isTTY), () => screen.lineClear);
  const questions = new Questions(
    options.answers,
    (text) => say(colours.dim(text)),
    (text, sameLine) => screen.own(text, { sameLine }),
  );
  /** Told once: typing while a command runs goes nowhere; told once: nothing here answers (stdin is not a terminal). */
  let toldTyping = false;
  let toldNoAnswers = false;
  const offered = new Set<string>();
  /** Accepted commands whose output this process showed (or is showing). */
  const followed = new Set<string>();
  /** Proposals this process decided (their run/resolved is not news). */
  const mine = new Set<string>();
  let alias = options.run;
  let streaming: { path: string } | null = null;
  let interrupts = 0;
  let stopping = false;
  /** Whether the run's end (done, failed, aborted) has had its final line. */
  let ended = false;
  /** The text of the model's last reply (run/state "model replied"), streamed above as run/progress. */
  let lastReply: string | null = null;
  const say = (text: string) => {
    spin.stop();
    screen.own(`${text}\n`);
  };

  let settle!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (settle = resolve));
  let queue = Promise.resolve();
  /** Paths decided elsewhere while they waited here. */
  const decidedElsewhere = new Map<string, SpoolNotifications["run/resolved"]>();

  const onProposal = async (p: Proposal) => {
    if (stopping) return;
    // Decided before its turn here came (already reported): an accepted command is followed all the same.
    if (decidedElsewhere.has(p.path)) return followElsewhere(p);
    await showProposal(p.producer);
    let answer: string | null = options.yes ? "y" : null;
    if (answer === "y") say(colours.dim("  accepting: --yes"));
    if (answer === null && questions.source === "none" && !toldNoAnswers) {
      toldNoAnswers = true;
      say(
        colours.dim(
          "  stdin is not a terminal: nothing here answers proposals (--yes accepts them, --answers-from-stdin reads y/n/a lines); decide from another client:",
        ),
      );
    }
    if (answer === null && questions.source === "none") {
      // The short reference: the command's number in the run (spool show numbers them the same way).
      const number = (await runCommands(client, p.run).catch(() => [])).find((c) => c.path === p.path)?.number;
      const ref = `${escapeControl(p.run)} ${number ?? escapeControl(p.path)}`;
      say(colours.dim(`  spool approve ${ref}   or   spool reject ${ref}`));
    }
    while (answer === null || !/^[yna]$/i.test(answer)) {
      // Decided elsewhere while its facts were being shown: no question.
      if (decidedElsewhere.has(p.path)) return followElsewhere(p);
      // Asked again (a key that is no answer) or after text arrived: the terminal's state is reset again first.
      spin.stop();
      screen.reset();
      answer = await questions.ask(
        questions.source === "none"
          ? "  waiting for a decision…\n"
          : `  Accept? [y]es / [n]o / [a]lways this command (same directory and environment) in this run${questions.source === "keys" ? " (one key)" : ""}: `,
      );
      if (stopping) return;
      if (decidedElsewhere.has(p.path)) return followElsewhere(p);
      if (answer === null) answer = "n"; // stdin closed: nobody can accept
      answer = answer.trim().toLowerCase().slice(0, 1) || "?";
      // Not an answer: said so, then asked again (never a silent redraw).
      if (!/^[yna]$/.test(answer)) say(colours.dim("  that is no answer: y accepts, n rejects, a always accepts this command in this run"));
    }
    mine.add(p.path);
    const decided = await client
      .call("run/resolve", {
        run: p.run,
        path: p.path,
        // "always" is a rule of the run, kept by the server: it accepts the same command, cwd and env itself from now on.
        ...(answer === "n"
          ? { decision: "reject", reason: "rejected from the spool CLI" }
          : { decision: "accept", ...(answer === "a" ? { always: true } : {}) }),
      })
      .then((r) => r)
      .catch((error: unknown) => {
        // Decided elsewhere in the meantime: that decision stands, and was reported.
        mine.delete(p.path);
        if (decidedElsewhere.has(p.path) || stopping) return null;
        throw error;
      });
    if (!decided) return decidedElsewhere.has(p.path) ? followElsewhere(p) : undefined;
    if (answer === "n") {
      say(colours.yellow("  rejected"));
      return;
    }
    say(colours.green(`  accepted, running on ${escapeControl(decided.runner ?? "?")}`));
    await follow(p);
  };

  /** A proposal accepted by another client: its output and end are shown as if it had been accepted here. */
  const followElsewhere = async (p: { run: string; path: string }) => {
    const decision = decidedElsewhere.get(p.path);
    if (decision?.decision !== "accept" || stopping || followed.has(p.path)) return;
    await follow(p);
  };

  /** What every client shows before a decision (src/protocol/proposal-facts.ts), under a header naming the proposal. */
  const showProposal = async (facts: Producer) => {
    const path = facts.path;
    const runners = facts.runner === null ? await client.call("runner/list", {}).catch(() => null) : null;
    // Whatever a model or a command left the terminal in, the facts are drawn on a reset screen.
    spin.stop();
    screen.reset();
    say(`${colours.cyan("▶ proposal")} ${colours.bold(escapeControl(facts.command))} ${colours.dim(`(${escapeControl(facts.tool)}, ${path})`)}`);
    say(factsText(facts, { defaultRunner: runners ? defaultRunnerName(runners.runners) : null, indent: "  " }));
  };

  const follow = async (p: { run: string; path: string }) => {
    followed.add(p.path);
    streaming = { path: p.path };
    if (!toldTyping && process.stdin.isTTY) {
      toldTyping = true;
      say(
        colours.dim(
          `  (keys typed here do not reach the command; to answer it: spool attach ${escapeControl(p.run)} ${p.path}, or spool input ${escapeControl(p.run)} ${p.path} TEXT)`,
        ),
      );
    }
    const watch = await client.watch({ run: p.run, path: p.path }, (chunk) => {
      spin.stop();
      if (chunk.channel === 2) screen.untrusted(chunk.data, { kind: "output", stream: "err", ...(errColours.on ? { colour: errColours.red } : {}) });
      else screen.untrusted(chunk.data, { kind: "output" });
    });
    const ended = await watch.ended;
    streaming = null;
    const status = [...ended.values()][0];
    // The log entry holds how it ended (exit code, signal, the reason of a cancel); the words come from it.
    const log = await client
      .call("entry/list", { run: p.run, pattern: p.path })
      .then((r) => r.entries.find((e) => e.path === p.path))
      .catch(() => undefined);
    say(colours.dim(`  finished: ${status ? endedWords(log, status.status, status.exit_code) : "?"}`));
  };

  const offer = (p: Proposal) => {
    if (p.run !== alias || offered.has(p.path)) return;
    offered.add(p.path);
    // One proposal at a time, in order: questions never interleave.
    queue = queue
      .then(() => onProposal(p))
      .catch((error) => say(errColours.red(`error: ${escapeControl(error instanceof Error ? error.message : String(error))}`)));
  };
  /**
   * Until the run's first line ("run NAME") is printed, what the server says about runs is kept, then
   * replayed: nothing is missed, and nothing is printed above that line (a fast model streams before
   * run/create answers). A new run's name (run-N) is known only from run/create's answer.
   */
  let early: (() => void)[] | null = [];
  const release = () => {
    const held = early ?? [];
    early = null;
    for (const replay of held) replay();
  };
  const onRun =
    <T>(handler: (p: T) => void) =>
    (p: T) => {
      if (early) early.push(() => handler(p));
      else handler(p);
    };
  client.on("run/proposal", onRun(offer));
  client.on(
    "run/resolved",
    onRun((p: SpoolNotifications["run/resolved"]) => {
      if (p.run === alias && p.resolver.kind === "rule" && !offered.has(p.path)) {
        // Accepted by an "always" rule of the run: nobody is asked; show what runs, and its output.
        offered.add(p.path);
        queue = queue
          .then(async () => {
            const log = await client.call("entry/get", { run: p.run, path: p.path });
            await showProposal(producerOf(log));
            say(colours.dim(`  accepted by ${escapeControl(p.resolvedBy)}, running on ${escapeControl(p.runner ?? "?")}`));
            if (!stopping) await follow(p);
          })
          .catch((error) => say(errColours.red(`error: ${escapeControl(error instanceof Error ? error.message : String(error))}`)));
        return;
      }
      if (p.run !== alias || !offered.has(p.path) || mine.has(p.path)) return;
      if (decidedElsewhere.has(p.path)) return;
      decidedElsewhere.set(p.path, p);
      if (p.resolver.kind === "abort") {
        // Not a person's rejection: the run's final line ("✖ aborted: why") says it, once the run has it.
        if (!ended) say(colours.yellow(`  ${p.path} was not run: the run is being aborted`));
        if (questions.asking) questions.withdraw();
        return;
      }
      const who = p.resolvedBy ? ` by ${escapeControl(p.resolvedBy)}` : "";
      const where = p.decision === "accept" && p.runner ? `, running on ${escapeControl(p.runner)}` : "";
      say(
        colours.yellow(`  ${p.path} was ${p.decision === "accept" ? "accepted" : "rejected"}${who}${p.reason ? `: ${escapeControl(p.reason)}` : ""}${where}`),
      );
      if (questions.asking) questions.withdraw();
    }),
  );
  client.on(
    "run/progress",
    onRun((p: SpoolNotifications["run/progress"]) => {
      if (p.run !== alias) return;
      spin.stop();
      screen.untrusted(p.delta, { kind: "model" });
    }),
  );
  client.on(
    "run/state",
    onRun((p: SpoolNotifications["run/state"]) => {
      if (p.run !== alias) return;
      if (p.event === "model call" || p.event === "loop started" || p.event === "tool call") spin.start();
      if (p.event === "loop started") ended = false;
      if (p.event === "model replied" || p.event === "waiting on a proposal") spin.stop();
      if (p.event === "model replied") lastReply = typeof p.text === "string" ? p.text : null;
      if (p.event === "loop finished" && p.summary) {
        // A loop that ended with a text answer has that answer as its summary: it was streamed already, so it is not printed twice.
        ended = true;
        const summary = String(p.summary);
        if (lastReply !== null && summary.trim() === lastReply.trim()) say(colours.green("✔ done"));
        else if (!summary.trim().includes("\n")) say(`${colours.green("✔ done:")} ${escapeControl(summary.trim())}`);
        else {
          // The model's words: a block of untrusted text under the line, as its streamed text is.
          say(colours.green("✔ done:"));
          screen.untrusted(summary.trim(), { kind: "model" });
          screen.endBlock();
        }
      }
      if (p.event === "loop failed") {
        ended = true;
        say(errColours.red(`✖ failed: ${escapeControl(String(p.error))}`));
      }
      // One final line for every way a run ends: done, failed (above), aborted (here or anywhere else).
      if (p.status === RUN.done && p.event === "idle") {
        if (!ended) say(colours.green("✔ done"));
        ended = true;
        settle(EXIT.ok);
      }
      if (p.status === RUN.failed) settle(EXIT.failed);
      if (p.status === RUN.aborted) {
        if (!ended) say(errColours.red(`✖ aborted${typeof p.reason === "string" && p.reason ? `: ${escapeControl(p.reason)}` : ""}`));
        ended = true;
        settle(EXIT.interrupted);
      }
    }),
  );

  const abort = () => {
    stopping = true;
    if (questions.asking) questions.withdraw();
    // "\r": over the ^C the terminal echoed, not after it.
    say(colours.yellow("\raborting the run"));
    if (!alias) return settle(EXIT.interrupted);
    void client.call("run/abort", { run: alias, reason: "aborted with Ctrl-C" }).catch(() => settle(EXIT.interrupted));
    // The run's "aborted" state ends the wait; should it not come, leave anyway.
    setTimeout(() => settle(EXIT.interrupted), ABORT_WAIT_MS).unref();
  };
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1 && streaming) {
      say(colours.yellow("\rcancelling the running command (Ctrl-C again aborts the run)"));
      void client.call("stream/cancel", { run: alias!, path: streaming.path, reason: "cancelled with Ctrl-C" }).catch(() => undefined);
      return;
    }
    abort();
  };
  process.on("SIGINT", onSigint);
  try {
    spin.start();
    const existing = alias ? await client.call("run/get", { run: alias }).catch(() => null) : null;
    if (!prompt) {
      if (!existing) throw new CliError(`the project has no run "${alias}" (see \`spool runs\`)`, EXIT.notFound);
      say(colours.dim(`run ${alias}: ${runStatusWord(existing.run.status)}`));
      release();
      const pending = await client.call("proposal/list", { run: alias!, limit: 200 });
      for (const p of pending.proposals) offer(p);
      if (!OPEN_RUN.includes(existing.run.status)) {
        await queue;
        spin.stop();
        return existing.run.status === RUN.failed ? EXIT.failed : existing.run.status === RUN.aborted ? EXIT.interrupted : EXIT.ok;
      }
    } else if (existing) {
      say(colours.dim(`run ${alias}`));
      release();
      await client.call("run/prompt", { run: alias!, prompt, mode });
    } else {
      if (!options.model) throw usageError(`spool ${mode} needs --model ALIAS for a new run (see \`spool models\`)`);
      // Listen before creating, so nothing the run does is missed.
      const created = await client
        .call("run/create", { ...(alias ? { alias } : {}), model: options.model, prompt, mode })
        .catch((error: unknown) => unknownModel(client, options.model!, error));
      alias = created.run.alias;
      say(colours.dim(`run ${alias}`));
      release();
    }
    const lost = connectionLost(
      client,
      `— the run stays on the server, and goes on while the server runs; once it answers again, \`spool ${mode} --run ${alias}\` shows where it is`,
    );
    const code = await Promise.race([finished, lost]);
    // The last proposal's output is shown, unless we are leaving on an abort.
    if (!stopping) await Promise.race([queue, lost]);
    spin.stop();
    screen.endLine();
    return code;
  } finally {
    process.off("SIGINT", onSigint);
    questions.close();
    spin.stop();
  }
}
