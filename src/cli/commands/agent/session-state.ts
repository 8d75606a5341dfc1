import type { SpoolClient } from "../../../client/spool-client.js";
import type { SpoolNotifications } from "../../../protocol/notifications.js";
import { palette } from "../../common.js";
import { TerminalWriter } from "../../terminal-writer.js";
import { Endings } from "./endings.js";
import { Held } from "./held.js";
import { type AnswerSource, Questions } from "./questions.js";
import { spinner } from "./spinner.js";
import { Verdict } from "./verdict.js";

/** How a turn was asked for: --model, --run, --yes, and where answers come from. */
export interface SessionOptions {
  model?: string;
  run?: string;
  yes: boolean;
  answers: AnswerSource;
}

/**
 * What the stages of a `spool ask`/`spool act` turn share (src/cli/commands/agent/session.ts tells the turn): the terminal, the
 * questions, what was offered, followed and decided here, and the run's end once seen.
 */
export abstract class SessionState {
  readonly colours = palette();
  readonly errColours = palette(process.stderr);
  /** Every byte to the terminal: the model's text and the commands' output made safe, each in a block of its own, under a gutter. */
  readonly screen = new TerminalWriter(process.stdout, process.stderr, {
    colour: (gutter) => (this.colours.on ? `\u001b[2m${gutter}\u001b[22m` : gutter),
  });
  readonly spin = spinner(Boolean(process.stderr.isTTY), () => this.screen.lineClear);
  readonly questions: Questions;
  /** Told once, when a key is typed while a command runs: it goes nowhere; told once: nothing here answers (stdin is not a terminal). */
  toldTyping = false;
  toldNoAnswers = false;
  readonly offered = new Set<string>();
  /** Accepted commands whose output this process showed (or is showing). */
  readonly followed = new Set<string>();
  /** Proposals this process decided (their run/resolved is not news). */
  readonly mine = new Set<string>();
  alias: string | undefined;
  streaming: { path: string } | null = null;
  interrupts = 0;
  stopping = false;
  /** Whether the run's end (done, failed, aborted) has had its final line. */
  ended = false;
  /** The text of the model's last reply (run/state "model replied"), streamed above as run/progress. */
  lastReply: string | null = null;
  /** Whether the work was done: every followed command succeeded, no proposal was rejected (else exit 1). */
  readonly verdict = new Verdict();
  /** The commands of the proposals shown here, by path, to name one that failed. */
  readonly commands = new Map<string, string>();
  /** A running command was cancelled with Ctrl-C here (exit 130). */
  cancelled = false;
  /**
   * What the server says about the run is held until the run's first line ("run NAME") is printed, and while a
   * followed command's output or a decision's outcome is being written (src/cli/commands/agent/held.ts).
   */
  readonly held = new Held();
  readonly releaseFirstLine = this.held.hold();
  /** How followed commands ended, as their entries record it. */
  readonly endings: Endings;

  settle!: (code: number) => void;
  /** How the run ended, once this process saw it end (or left on Ctrl-C). */
  settled: number | null = null;
  readonly finished = new Promise<number>((resolve) => (this.settle = (code) => resolve((this.settled ??= code))));
  queue = Promise.resolve();
  /** Paths decided elsewhere while they waited here. */
  readonly decidedElsewhere = new Map<string, SpoolNotifications["run/resolved"]>();

  constructor(
    readonly client: SpoolClient,
    readonly mode: "ask" | "act",
    readonly prompt: string,
    readonly options: SessionOptions,
  ) {
    this.questions = new Questions(
      options.answers,
      (text) => this.say(this.colours.dim(text)),
      (text, sameLine) => this.screen.own(text, { sameLine }),
    );
    this.alias = options.run;
    this.endings = new Endings(client, (run, path) => run === this.alias && this.followed.has(path));
  }

  readonly say = (text: string) => {
    this.spin.stop();
    this.screen.own(`${text}\n`);
  };
}
