import { factsChanged, type SpoolClient, type SpoolRpcError } from "../../../client/spool-client.js";
import { compactionWords as compactionLine, pausedWords } from "../../../protocol/agent-words.js";
import { deadlineWords } from "../../../protocol/deadline-words.js";
import type { SpoolNotifications } from "../../../protocol/notifications.js";
import { defaultRunnerName, factsRevision, factsText } from "../../../protocol/proposal-facts.js";
import { ENTRY, OPEN_RUN, RUN, runStatusWord } from "../../../protocol/status.js";
import { type Producer, producerOf } from "../../../protocol/views.js";
import { escapeControl } from "../../common.js";
import { CliError, EXIT, usageError } from "../../errors.js";
import { runCommands } from "../../refs.js";
import { lostConnection, unknownModel } from "./leaving.js";
import { type SessionOptions, SessionState } from "./session-state.js";

type Proposal = SpoolNotifications["run/proposal"];

/** How long to wait for the server to confirm an abort before leaving anyway. */
const ABORT_WAIT_MS = 3_000;

export async function drive(client: SpoolClient, mode: "ask" | "act", prompt: string, options: SessionOptions): Promise<number> {
  return new ActSession(client, mode, prompt, options).run();
}

/**
 * One `spool ask`/`spool act` turn, as a story: listen to the run's news, start (follow an existing run, prompt it, or
 * create one), decide the proposals one at a time and follow what runs, then wait for the end and say its exit code.
 * The fields the stages share are SessionState's (session-state.ts); its arrow-function fields are the handlers given to
 * the client and to process.
 */
class ActSession extends SessionState {
  constructor(client: SpoolClient, mode: "ask" | "act", prompt: string, options: SessionOptions) {
    super(client, mode, prompt, options);
    // After the handlers below are set (they are fields): each notification to its handler from the start.
    this.listen();
  }

  /** The turn: started, then its end awaited; Ctrl-C is this session's while it lasts. */
  async run(): Promise<number> {
    process.on("SIGINT", this.onSigint);
    try {
      const over = await this.start();
      if (over !== undefined) return over;
      return await this.awaitTheEnd();
    } finally {
      process.off("SIGINT", this.onSigint);
      this.questions.close();
      this.spin.stop();
    }
  }

  /** The run's news, each notification to its handler. */
  listen(): void {
    this.client.on("run/proposal", this.onRun(this.offer));
    this.client.on("run/resolved", this.onRun(this.onResolved));
    this.client.on("run/progress", this.onRun(this.onProgress));
    this.client.on("run/state", this.onRun(this.onState));
    this.client.on("run/compaction", this.onRun(this.onCompaction));
  }

  // A new run's name (run-N) is known only from run/create's answer: what comes before it is held (see `held`).
  onRun<T>(handler: (p: T) => void) {
    return this.held.wrap(handler);
  }

  /** An existing run followed (its exit code returned when it is over already), prompted again, or a new one created. */
  async start(): Promise<number | undefined> {
    const { client, colours, options, prompt, mode, say } = this;
    this.spin.start();
    const existing = this.alias ? await client.call("run/get", { run: this.alias }).catch(() => null) : null;
    if (!prompt) {
      if (!existing) throw new CliError(`the project has no run "${this.alias}" (see \`spool runs\`)`, EXIT.notFound);
      return this.resume(existing.run.status);
    }
    if (existing) {
      say(colours.dim(`run ${this.alias}`));
      this.releaseFirstLine();
      await client.call("run/prompt", { run: this.alias!, prompt, mode });
      return undefined;
    }
    if (!options.model) throw usageError(`spool ${mode} needs --model ALIAS for a new run (see \`spool models\`)`);
    // Listen before creating, so nothing the run does is missed.
    const created = await client
      .call("run/create", { ...(this.alias ? { alias: this.alias } : {}), model: options.model, prompt, mode })
      .catch((error: unknown) => unknownModel(client, options.model!, error));
    this.alias = created.run.alias;
    say(colours.dim(`run ${this.alias}`));
    this.releaseFirstLine();
    return undefined;
  }

  /** An existing run without a prompt: its pending proposals offered; when it is over, where to read it, and its exit code. */
  async resume(status: number): Promise<number | undefined> {
    const { client, colours, mode, say } = this;
    const alias = this.alias!;
    say(colours.dim(`run ${alias}: ${runStatusWord(status)}`));
    this.releaseFirstLine();
    const pending = await client.call("proposal/list", { run: alias, limit: 200 });
    for (const p of pending.proposals) this.offer(p);
    if (OPEN_RUN.includes(status)) return undefined;
    await this.queue;
    this.spin.stop();
    // Nothing will happen in it: where to read what it did, and how to go on.
    const name = escapeControl(alias);
    say(
      colours.dim(
        `  nothing left to follow: \`spool show ${name}\` shows its conversation and commands; \`spool ${mode} "PROMPT" --run ${name}\` goes on with it`,
      ),
    );
    return status === RUN.failed ? EXIT.failed : status === RUN.aborted ? EXIT.interrupted : EXIT.ok;
  }

  /** The run's end (or the connection's), once what this process shows has been shown, as an exit code. */
  async awaitTheEnd(): Promise<number> {
    const lost = new Promise<{ code: number; reason: string }>((resolve) => this.client.onClose((code, reason) => resolve({ code, reason })));
    void lost.then(() => {
      // Nothing can be decided or read any more: a question waiting here is withdrawn.
      this.stopping = true;
      if (this.questions.asking) this.questions.withdraw();
    });
    const ending = await Promise.race([this.finished, lost]);
    // The last proposal's output is shown, unless we are leaving on an abort.
    if (!this.stopping) await Promise.race([this.queue, lost]);
    if (typeof ending === "object" || this.settled === null) {
      // The connection was lost: what this process was showing ends first (a command's end, the run's, held news), in a bounded time.
      // Not unref'd: with the connection gone this timer may be all that keeps the process alive, and a process whose
      // loop empties while it awaits exits 13 (an unsettled top-level await) instead of saying why it left.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.queue, new Promise((resolve) => (timer = setTimeout(resolve, ABORT_WAIT_MS)))]);
      clearTimeout(timer);
      this.spin.stop();
      this.screen.endLine();
      if (this.settled === null) throw lostConnection(await lost, this.mode, this.alias!);
    }
    const code = this.settled ?? EXIT.ok;
    this.spin.stop();
    this.screen.endLine();
    return this.exitCode(code);
  }

  exitCode(code: number): number {
    // Ctrl-C cancelled a command here: interrupted, however the run went on; else a failed command or a rejection is work not done.
    if (this.cancelled && (code === EXIT.ok || code === EXIT.failed)) return EXIT.interrupted;
    if (!this.verdict.ok && code === EXIT.ok) return EXIT.failed;
    return code;
  }

  /** A proposal of this run, put in the queue once: one proposal at a time, in order. */
  readonly offer = (p: Proposal) => {
    if (p.run !== this.alias || this.offered.has(p.path)) return;
    this.offered.add(p.path);
    // One proposal at a time, in order: questions never interleave.
    this.queue = this.queue.then(() => this.onProposal(p)).catch(this.sayError);
  };

  readonly sayError = (error: unknown) => this.say(this.errColours.red(`error: ${escapeControl(error instanceof Error ? error.message : String(error))}`));

  /** Its turn: decided on the facts shown, and again on the new ones each time they changed before the decision (FACTS_CHANGED). */
  async onProposal(p: Proposal) {
    for (let shown: Proposal | undefined = p; shown; ) shown = await this.decideOn(shown);
  }

  /** Its facts shown, a decision asked for (or --yes, or one from elsewhere awaited), then sent; the proposal as it is now if its facts changed meanwhile. */
  async decideOn(p: Proposal): Promise<Proposal | undefined> {
    const { colours, options, questions, say } = this;
    if (this.stopping) return;
    // Decided before its turn here came (already reported): an accepted command is followed all the same.
    if (this.decidedElsewhere.has(p.path)) return this.followElsewhere(p);
    await this.showProposal(p.producer);
    let answer: string | null = options.yes ? "y" : null;
    if (answer === "y") say(colours.dim("  accepting: --yes"));
    if (answer === null && questions.source === "none" && !this.toldNoAnswers) {
      this.toldNoAnswers = true;
      say(
        colours.dim(
          "  stdin is not a terminal: nothing here answers proposals (--yes accepts them, --answers-from-stdin reads y/n/a lines); decide from another client:",
        ),
      );
    }
    if (answer === null && questions.source === "none") {
      const ref = await this.shortRef(p);
      say(colours.dim(`  spool approve ${ref}   or   spool reject ${ref}`));
    }
    // Not decided in time, the deadline rejects it: said before the question, so nobody is surprised by it.
    const deadline = answer === null ? deadlineWords(p.expiresAt) : null;
    if (deadline) say(colours.dim(`  ${deadline} unless decided`));
    while (answer === null || !/^[yna]$/i.test(answer)) {
      // Decided elsewhere while its facts were being shown: no question.
      if (this.decidedElsewhere.has(p.path)) return this.followElsewhere(p);
      // Asked again (a key that is no answer) or after text arrived: the terminal's state is reset again first.
      this.spin.stop();
      this.screen.reset();
      answer = await questions.ask(
        questions.source === "none"
          ? "  waiting for a decision…\n"
          : `  Accept? [y]es / [n]o / [a]lways this command (same directory and environment) in this run${questions.source === "keys" ? " (one key)" : ""}: `,
      );
      if (this.stopping) return;
      if (this.decidedElsewhere.has(p.path)) return this.followElsewhere(p);
      if (answer === null) answer = "n"; // stdin closed: nobody can accept
      answer = answer.trim().toLowerCase().slice(0, 1) || "?";
      // Not an answer: said so, then asked again (never a silent redraw).
      if (!/^[yna]$/.test(answer)) say(colours.dim("  that is no answer: y accepts, n rejects, a always accepts this command in this run"));
    }
    this.mine.add(p.path);
    // The model goes on as soon as the server has the decision: its words wait until the outcome is said (and the command's output shown).
    const release = this.held.hold();
    try {
      return await this.decide(p, answer, options.yes ? "flag" : "key");
    } finally {
      release();
    }
  }

  /**
   * Sends the decision `answer` (y, n or a) on `p` (`how`: a key pressed or a flag), says it, and follows an accepted
   * command. An accept names the facts revision shown: refused (FACTS_CHANGED) when they changed since (the runner's
   * server stopped and another's runner takes it), nothing ran, and the proposal as it is now is returned, to ask again.
   */
  async decide(p: Proposal, answer: string, how: "key" | "flag" = "key"): Promise<Proposal | undefined> {
    let changed: SpoolRpcError | null = null;
    const decided = await this.client
      .call("run/resolve", {
        run: p.run,
        path: p.path,
        // How it was decided, for the trail: a key pressed here, or --yes given beforehand (a flag).
        how,
        // "always" is a rule of the run, kept by the server: it accepts the same command, cwd and env itself from now on.
        ...(answer === "n"
          ? { decision: "reject", reason: "rejected from the spool CLI" }
          : { decision: "accept", facts: factsRevision(p.producer), ...(answer === "a" ? { always: true } : {}) }),
      })
      .then((r) => r)
      .catch((error: unknown) => {
        // Decided elsewhere in the meantime: that decision stands, and was reported.
        this.mine.delete(p.path);
        if (this.decidedElsewhere.has(p.path) || this.stopping) return null;
        if (!factsChanged(error)) throw error;
        changed = error;
        return null;
      });
    if (changed) return this.changedFacts(p, changed);
    if (!decided) return this.decidedElsewhere.has(p.path) ? this.followElsewhere(p) : undefined;
    if (answer === "n") {
      this.verdict.rejected();
      this.say(this.colours.yellow("  rejected"));
      return;
    }
    this.say(this.colours.green(`  accepted, running on ${escapeControl(decided.runner ?? "?")}`));
    await this.follow(p);
    return undefined;
  }

  /** An accept refused on facts that changed: said, and the proposal as it is now (to be shown and asked about again), if still pending. */
  async changedFacts(p: Proposal, error: SpoolRpcError): Promise<Proposal | undefined> {
    this.say(this.colours.yellow(`  not accepted: ${escapeControl(error.message)}`));
    const log = await this.client.call("entry/get", { run: p.run, path: p.path });
    return log.status === ENTRY.proposed ? { ...p, producer: producerOf(log) } : undefined;
  }

  /** A proposal accepted by another client: its output and end are shown as if it had been accepted here. */
  async followElsewhere(p: { run: string; path: string }): Promise<undefined> {
    const decision = this.decidedElsewhere.get(p.path);
    if (decision?.decision !== "accept" || this.stopping || this.followed.has(p.path)) return;
    await this.follow(p);
  }

  /** What every client shows before a decision (src/protocol/proposal-facts.ts), under a header naming the proposal. */
  async showProposal(facts: Producer) {
    const { colours, say } = this;
    const path = facts.path;
    this.commands.set(path, facts.command);
    const runners = facts.runner === null ? await this.client.call("runner/list", {}).catch(() => null) : null;
    // Whatever a model or a command left the terminal in, the facts are drawn on a reset screen.
    this.spin.stop();
    this.screen.reset();
    say(`${colours.cyan("▶ proposal")} ${colours.bold(escapeControl(facts.command))} ${colours.dim(`(${escapeControl(facts.tool)}, ${path})`)}`);
    say(factsText(facts, { defaultRunner: runners ? defaultRunnerName(runners.runners) : null, indent: "  " }));
  }

  /** `RUN N`: the command's number in the run (spool show numbers them the same way), else its path. */
  async shortRef(p: { run: string; path: string }) {
    const number = (await runCommands(this.client, p.run).catch(() => [])).find((c) => c.path === p.path)?.number;
    return `${escapeControl(p.run)} ${number ?? escapeControl(p.path)}`;
  }

  async follow(p: { run: string; path: string }) {
    // Nothing else is written until its output has been, and how it ended.
    const release = this.held.hold();
    try {
      await this.followOutput(p).catch((error: unknown) => {
        // The connection lost before its output was watched: why is said once, when act leaves.
        if (!this.client.closed) throw error;
        this.streaming = null;
        this.say(this.colours.dim("  finished: not known here (the connection to the server was lost)"));
      });
    } finally {
      release();
    }
  }

  async followOutput(p: { run: string; path: string }) {
    const { client, colours, errColours, screen, say } = this;
    this.followed.add(p.path);
    this.streaming = { path: p.path };
    const ref = this.shortRef(p);
    // Keys typed while it runs do not reach it: said once, when one is typed (nothing is said to a person who types nothing).
    const stopTyping = this.questions.watchTyping(() => {
      if (this.toldTyping) return;
      this.toldTyping = true;
      void ref.then((r) => say(colours.dim(`  (keys typed here do not reach the command; to answer it: spool attach ${r}, or spool input ${r} TEXT)`)));
    });
    const watch = await client.watch({ run: p.run, path: p.path }, (chunk) => {
      this.spin.stop();
      if (chunk.channel === 2) screen.untrusted(chunk.data, { kind: "output", stream: "err", ...(errColours.on ? { colour: errColours.red } : {}) });
      else screen.untrusted(chunk.data, { kind: "output" });
    });
    // The connection lost while it runs: its end is still said, from what arrived (src/cli/commands/agent/endings.ts). The watch
    // would wait for a reconnect this client never makes: the close ends the wait.
    const lost = new Promise<null>((resolve) => (client.closed ? resolve(null) : client.onClose(() => resolve(null))));
    const ended = await Promise.race([watch.ended.catch(() => null), lost]).finally(stopTyping);
    this.streaming = null;
    const status = ended ? [...ended.values()][0] : undefined;
    const ending = await this.endings.of(p.run, p.path, status);
    this.verdict.ended(this.commands.get(p.path) ?? p.path, ending);
    const words = ending.words;
    say(colours.dim(`  finished: ${words === "?" && client.closed ? "not known here (the connection to the server was lost)" : words}`));
  }

  /** A decision on a proposal of this run: by a rule (followed here), or by another client or an abort (told). */
  readonly onResolved = (p: SpoolNotifications["run/resolved"]) => {
    const { colours, questions } = this;
    if (p.run === this.alias && p.resolver.kind === "rule" && !this.offered.has(p.path)) return this.followRuled(p);
    if (p.run !== this.alias || !this.offered.has(p.path) || this.mine.has(p.path)) return;
    if (this.decidedElsewhere.has(p.path)) return;
    this.decidedElsewhere.set(p.path, p);
    if (p.resolver.kind === "abort") {
      // Not a person's rejection: the run's final line ("✖ aborted: why") says it, once the run has it.
      if (!this.ended) this.say(colours.yellow(`  ${p.path} was not run: the run is being aborted`));
      if (questions.asking) questions.withdraw();
      return;
    }
    if (p.decision === "reject") this.verdict.rejected();
    const who = p.resolvedBy ? ` by ${escapeControl(p.resolvedBy)}` : "";
    const where = p.decision === "accept" && p.runner ? `, running on ${escapeControl(p.runner)}` : "";
    this.say(
      colours.yellow(`  ${p.path} was ${p.decision === "accept" ? "accepted" : "rejected"}${who}${p.reason ? `: ${escapeControl(p.reason)}` : ""}${where}`),
    );
    if (questions.asking) questions.withdraw();
  };

  followRuled(p: SpoolNotifications["run/resolved"]) {
    // Accepted by an "always" rule of the run: nobody is asked; show what runs, and its output.
    this.offered.add(p.path);
    this.queue = this.queue
      .then(async () => {
        // Never while a question waits (what answers it elsewhere must get through): from its turn on.
        const release = this.held.hold();
        try {
          const log = await this.client.call("entry/get", { run: p.run, path: p.path });
          await this.showProposal(producerOf(log));
          this.say(this.colours.dim(`  accepted by ${escapeControl(p.resolvedBy)}, running on ${escapeControl(p.runner ?? "?")}`));
          if (!this.stopping) await this.follow(p);
        } finally {
          release();
        }
      })
      .catch(this.sayError);
  }

  /** The conversation compacted: a line when it starts and when it is done (the summary is in `spool show`). */
  readonly onCompaction = (p: SpoolNotifications["run/compaction"]) => {
    if (p.run !== this.alias || p.phase === "chunk") return;
    this.spin.stop();
    this.screen.endBlock();
    if (p.phase === "started")
      this.say(
        this.colours.dim(`── compacting the conversation (${p.reason === "window" ? "near the model's context window" : "the model said it was too long"}) …`),
      );
    else if (p.phase === "completed" && p.replaced !== undefined)
      this.say(
        this.colours.dim(compactionLine({ replaced: p.replaced, reason: p.reason, tokensBefore: p.tokensBefore ?? 0, tokensAfter: p.tokensAfter ?? 0 })),
      );
    else if (p.phase === "failed") this.say(this.errColours.red(`compacting the conversation failed: ${escapeControl(String(p.error))}`));
    this.spin.start();
  };

  /** The model's words as they stream. */
  readonly onProgress = (p: SpoolNotifications["run/progress"]) => {
    if (p.run !== this.alias) return;
    this.spin.stop();
    this.screen.untrusted(p.delta, { kind: "model" });
  };

  /** Where the run is: the spinner while the model or a tool works, and the run's final line and exit code once it ends. */
  readonly onState = (p: SpoolNotifications["run/state"]) => {
    const { colours, errColours, say } = this;
    if (p.run !== this.alias) return;
    if (p.event === "model call" || p.event === "loop started" || p.event === "tool call") this.spin.start();
    if (p.event === "loop started") this.ended = false;
    if (p.event === "model replied" || p.event === "waiting on a proposal") this.spin.stop();
    if (p.event === "model replied") {
      this.lastReply = typeof p.text === "string" ? p.text : null;
      // The reply's words are a block of their own: the next reply starts on a line of its own, never run on after it.
      this.screen.endBlock();
    }
    if (p.event === "loop finished" && p.summary) {
      // A loop that ended with a text answer has that answer as its summary: it was streamed already, so it is not printed twice.
      this.ended = true;
      this.sayEnd(String(p.summary).trim());
    }
    if (p.event === "budget reached" && p.budget) {
      this.spin.stop();
      say(`${errColours.yellow("paused")}: ${pausedWords(p.budget)} — raise it to go on (spool budget ${p.run} +…), or spool abort ${p.run}`);
    }
    if (p.event === "budget raised") say(colours.green("budget raised: the run goes on"));
    if (p.event === "loop failed") {
      this.ended = true;
      say(errColours.red(`✖ failed: ${escapeControl(String(p.error))}`));
    }
    // One final line for every way a run ends: done, failed (above), aborted (here or anywhere else).
    if (p.status === RUN.done && p.event === "idle") {
      if (!this.ended) say(this.verdict.line(colours));
      this.ended = true;
      this.settle(EXIT.ok);
    }
    if (p.status === RUN.failed) this.settle(EXIT.failed);
    if (p.status === RUN.aborted) {
      if (!this.ended) say(errColours.red(`✖ aborted${typeof p.reason === "string" && p.reason ? `: ${escapeControl(p.reason)}` : ""}`));
      this.ended = true;
      this.settle(EXIT.interrupted);
    }
  };

  /**
   * The end of a loop with the model's summary: "✔ done" (with the summary, unless it was streamed as its reply); when
   * a command failed or a proposal was rejected, the summary as the model's words and then the verdict, in its colour.
   */
  sayEnd(summary: string) {
    const { colours, say } = this;
    const streamed = this.lastReply !== null && summary === this.lastReply.trim();
    if (this.verdict.ok && streamed) return say(colours.green("✔ done"));
    if (this.verdict.ok && !summary.includes("\n")) return say(`${colours.green("✔ done:")} ${escapeControl(summary)}`);
    if (this.verdict.ok) say(colours.green("✔ done:"));
    if (!streamed) {
      // The model's words: a block of untrusted text of its own, as its streamed text is.
      this.screen.endBlock();
      this.screen.untrusted(summary, { kind: "model" });
      this.screen.endBlock();
    }
    if (!this.verdict.ok) say(this.verdict.line(colours));
  }

  /** Ctrl-C: the first, while a command's output is followed, cancels that command; any other aborts the run. */
  readonly onSigint = () => {
    this.interrupts++;
    if (this.interrupts === 1 && this.streaming) {
      this.cancelled = true;
      this.say(this.colours.yellow("\rcancelling the running command (Ctrl-C again aborts the run)"));
      void this.client.call("stream/cancel", { run: this.alias!, path: this.streaming.path, reason: "cancelled with Ctrl-C" }).catch(() => undefined);
      return;
    }
    this.abort();
  };

  abort() {
    this.stopping = true;
    if (this.questions.asking) this.questions.withdraw();
    // "\r": over the ^C the terminal echoed, not after it.
    this.say(this.colours.yellow("\raborting the run"));
    if (!this.alias) return this.settle(EXIT.interrupted);
    void this.client.call("run/abort", { run: this.alias, reason: "aborted with Ctrl-C" }).catch(() => this.settle(EXIT.interrupted));
    // The run's "aborted" state ends the wait; should it not come, leave anyway.
    setTimeout(() => this.settle(EXIT.interrupted), ABORT_WAIT_MS).unref();
  }
}
