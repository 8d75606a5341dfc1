import { type SpoolClient, SpoolRpcError } from "../../client/spool-client.js";
import type { SpoolNotifications } from "../../protocol/notifications.js";
import { defaultRunnerName, factsText } from "../../protocol/proposal-facts.js";
import { OPEN_RUN, RUN, runStatusWord } from "../../protocol/status.js";
import { type Producer, producerOf } from "../../protocol/views.js";
import { escapeControl, palette } from "../common.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { runCommands } from "../refs.js";
import { TerminalWriter } from "../terminal-writer.js";
import { Endings } from "./endings.js";
import { Held } from "./held.js";
import { type AnswerSource, Questions } from "./questions.js";
import { spinner } from "./spinner.js";

type Proposal = SpoolNotifications["run/proposal"];

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

/** Why `spool act` leaves when its connection closes before the run ended: the server stopped (and ended what it ran), or the connection broke. */
function lostConnection(closed: { code: number; reason: string }, mode: string, run: string): CliError {
  const again = `\`spool ${mode} --run ${escapeControl(run)}\``;
  const why = `${closed.code}${closed.reason ? ` ${escapeControl(closed.reason)}` : ""}`;
  return new CliError(
    closed.code === WS_GOING_AWAY
      ? `the server stopped (${why}) and ended the commands it ran; once it runs again, ${again} shows where the run is`
      : `lost the connection to the server (${why}) — the run stays on the server, and goes on while the server runs; once it answers again, ${again} shows where it is`,
    EXIT.connection,
  );
}

/** The WebSocket close code of a server going away (it is stopping). */
const WS_GOING_AWAY = 1001;

/** How long to wait for the server to confirm an abort before leaving anyway. */
const ABORT_WAIT_MS = 3_000;

export async function drive(
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
  /** Told once, when a key is typed while a command runs: it goes nowhere; told once: nothing here answers (stdin is not a terminal). */
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
  /** A proposal of this run was rejected by a person (exit 1), a running command cancelled with Ctrl-C here (exit 130). */
  let rejected = false;
  let cancelled = false;
  /**
   * What the server says about the run is held until the run's first line ("run NAME") is printed, and while a
   * followed command's output or a decision's outcome is being written (src/cli/agent/held.ts).
   */
  const held = new Held();
  const releaseFirstLine = held.hold();
  /** How followed commands ended, as their entries record it. */
  const endings = new Endings(client, (run, path) => run === alias && followed.has(path));
  const say = (text: string) => {
    spin.stop();
    screen.own(`${text}\n`);
  };

  let settle!: (code: number) => void;
  /** How the run ended, once this process saw it end (or left on Ctrl-C). */
  let settled: number | null = null;
  const finished = new Promise<number>((resolve) => (settle = (code) => resolve((settled ??= code))));
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
      const ref = await shortRef(p);
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
    // The model goes on as soon as the server has the decision: its words wait until the outcome is said (and the command's output shown).
    const release = held.hold();
    try {
      await decide(p, answer);
    } finally {
      release();
    }
  };

  /** Sends the decision `answer` (y, n or a) on `p`, says it, and follows an accepted command. */
  const decide = async (p: Proposal, answer: string) => {
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
      rejected = true;
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

  /** `RUN N`: the command's number in the run (spool show numbers them the same way), else its path. */
  const shortRef = async (p: { run: string; path: string }) => {
    const number = (await runCommands(client, p.run).catch(() => [])).find((c) => c.path === p.path)?.number;
    return `${escapeControl(p.run)} ${number ?? escapeControl(p.path)}`;
  };

  const follow = async (p: { run: string; path: string }) => {
    // Nothing else is written until its output has been, and how it ended.
    const release = held.hold();
    try {
      await followOutput(p).catch((error: unknown) => {
        // The connection lost before its output was watched: why is said once, when act leaves.
        if (!client.closed) throw error;
        streaming = null;
        say(colours.dim("  finished: not known here (the connection to the server was lost)"));
      });
    } finally {
      release();
    }
  };

  const followOutput = async (p: { run: string; path: string }) => {
    followed.add(p.path);
    streaming = { path: p.path };
    const ref = shortRef(p);
    // Keys typed while it runs do not reach it: said once, when one is typed (nothing is said to a person who types nothing).
    const stopTyping = questions.watchTyping(() => {
      if (toldTyping) return;
      toldTyping = true;
      void ref.then((r) => say(colours.dim(`  (keys typed here do not reach the command; to answer it: spool attach ${r}, or spool input ${r} TEXT)`)));
    });
    const watch = await client.watch({ run: p.run, path: p.path }, (chunk) => {
      spin.stop();
      if (chunk.channel === 2) screen.untrusted(chunk.data, { kind: "output", stream: "err", ...(errColours.on ? { colour: errColours.red } : {}) });
      else screen.untrusted(chunk.data, { kind: "output" });
    });
    // The connection lost while it runs: its end is still said, from what arrived (src/cli/agent/endings.ts).
    const ended = await watch.ended.catch(() => null).finally(stopTyping);
    streaming = null;
    const status = ended ? [...ended.values()][0] : undefined;
    const words = await endings.of(p.run, p.path, status);
    say(colours.dim(`  finished: ${words === "?" && client.closed ? "not known here (the connection to the server was lost)" : words}`));
  };

  const offer = (p: Proposal) => {
    if (p.run !== alias || offered.has(p.path)) return;
    offered.add(p.path);
    // One proposal at a time, in order: questions never interleave.
    queue = queue
      .then(() => onProposal(p))
      .catch((error) => say(errColours.red(`error: ${escapeControl(error instanceof Error ? error.message : String(error))}`)));
  };
  // A new run's name (run-N) is known only from run/create's answer: what comes before it is held (see `held`).
  const onRun = <T>(handler: (p: T) => void) => held.wrap(handler);
  client.on("run/proposal", onRun(offer));
  client.on(
    "run/resolved",
    onRun((p: SpoolNotifications["run/resolved"]) => {
      if (p.run === alias && p.resolver.kind === "rule" && !offered.has(p.path)) {
        // Accepted by an "always" rule of the run: nobody is asked; show what runs, and its output.
        offered.add(p.path);
        queue = queue
          .then(async () => {
            // Never while a question waits (what answers it elsewhere must get through): from its turn on.
            const release = held.hold();
            try {
              const log = await client.call("entry/get", { run: p.run, path: p.path });
              await showProposal(producerOf(log));
              say(colours.dim(`  accepted by ${escapeControl(p.resolvedBy)}, running on ${escapeControl(p.runner ?? "?")}`));
              if (!stopping) await follow(p);
            } finally {
              release();
            }
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
      if (p.decision === "reject") rejected = true;
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
      cancelled = true;
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
      releaseFirstLine();
      const pending = await client.call("proposal/list", { run: alias!, limit: 200 });
      for (const p of pending.proposals) offer(p);
      if (!OPEN_RUN.includes(existing.run.status)) {
        await queue;
        spin.stop();
        // Nothing will happen in it: where to read what it did, and how to go on.
        const name = escapeControl(alias!);
        say(
          colours.dim(
            `  nothing left to follow: \`spool show ${name}\` shows its conversation and commands; \`spool ${mode} "PROMPT" --run ${name}\` goes on with it`,
          ),
        );
        return existing.run.status === RUN.failed ? EXIT.failed : existing.run.status === RUN.aborted ? EXIT.interrupted : EXIT.ok;
      }
    } else if (existing) {
      say(colours.dim(`run ${alias}`));
      releaseFirstLine();
      await client.call("run/prompt", { run: alias!, prompt, mode });
    } else {
      if (!options.model) throw usageError(`spool ${mode} needs --model ALIAS for a new run (see \`spool models\`)`);
      // Listen before creating, so nothing the run does is missed.
      const created = await client
        .call("run/create", { ...(alias ? { alias } : {}), model: options.model, prompt, mode })
        .catch((error: unknown) => unknownModel(client, options.model!, error));
      alias = created.run.alias;
      say(colours.dim(`run ${alias}`));
      releaseFirstLine();
    }
    const lost = new Promise<{ code: number; reason: string }>((resolve) => client.onClose((code, reason) => resolve({ code, reason })));
    void lost.then(() => {
      // Nothing can be decided or read any more: a question waiting here is withdrawn.
      stopping = true;
      if (questions.asking) questions.withdraw();
    });
    const ending = await Promise.race([finished, lost]);
    // The last proposal's output is shown, unless we are leaving on an abort.
    if (!stopping) await Promise.race([queue, lost]);
    if (typeof ending === "object" || settled === null) {
      // The connection was lost: what this process was showing ends first (a command's end, the run's, held news), in a bounded time.
      await Promise.race([queue, new Promise((resolve) => setTimeout(resolve, ABORT_WAIT_MS).unref())]);
      spin.stop();
      screen.endLine();
      if (settled === null) throw lostConnection(await lost, mode, alias!);
    }
    const code = settled ?? EXIT.ok;
    spin.stop();
    screen.endLine();
    // Ctrl-C cancelled a command here: interrupted, however the run went on; else a rejected proposal is work not done.
    if (cancelled && (code === EXIT.ok || code === EXIT.failed)) return EXIT.interrupted;
    if (rejected && code === EXIT.ok) return EXIT.failed;
    return code;
  } finally {
    process.off("SIGINT", onSigint);
    questions.close();
    spin.stop();
  }
}
