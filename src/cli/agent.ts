import { createInterface, type Interface } from "node:readline";
import { parseArgs } from "node:util";
import type { SpoolNotifications } from "../client/api.js";
import type { SpoolClient } from "../client/spool-client.js";
import { RUN } from "../core/status.js";
import { CLIENT_HELP, CLIENT_OPTIONS, connectClient, palette } from "./common.js";

export const agentHelp = (mode: "ask" | "act") => `Usage: spool ${mode} "PROMPT" --model ALIAS [--run ALIAS] [--yes]

${mode === "ask" ? "Asks a model about the project with read-only tools (env, get, wait)." : "Gives a model a task; it proposes shell commands that you accept or reject."}
Shows the model's text as it streams, each proposal with a prompt to accept
(y), reject (n) or always accept that command in this run (a), and the live
output of accepted commands (stderr apart from stdout). Ctrl-C cancels the
running command; a second Ctrl-C aborts the run. Exits 0 when the run
finishes, 1 when it fails, 130 when it is aborted.

Options:
  --model ALIAS       a model alias (spool models)
  --run ALIAS         continue this run (created if it does not exist)
  --yes, -y           accept every proposal without asking
${CLIENT_HELP}`;

type Proposal = SpoolNotifications["run/proposal"];

/** Reads one answer per question from stdin; EOF answers "n". */
class Questions {
  #rl: Interface | null = null;
  #lines: string[] = [];
  #waiting: ((line: string | null) => void) | null = null;
  #closed = false;

  ask(question: string): Promise<string | null> {
    process.stdout.write(question);
    if (!this.#rl) {
      this.#rl = createInterface({ input: process.stdin });
      this.#rl.on("line", (line) => {
        if (this.#waiting) {
          const w = this.#waiting;
          this.#waiting = null;
          w(line);
        } else this.#lines.push(line);
      });
      this.#rl.on("close", () => {
        this.#closed = true;
        this.#waiting?.(null);
      });
    }
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  close(): void {
    this.#rl?.close();
  }
}

/** A spinner on stderr while the model thinks; only on a terminal. */
function spinner(enabled: boolean) {
  const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
  let timer: NodeJS.Timeout | null = null;
  let i = 0;
  return {
    start() {
      if (!enabled || timer) return;
      timer = setInterval(() => process.stderr.write(`\r${frames[i++ % frames.length]} thinking…`), 80);
    },
    stop() {
      if (!timer) return;
      clearInterval(timer);
      timer = null;
      process.stderr.write("\r\u001b[K");
    },
  };
}

export function agentCommand(mode: "ask" | "act") {
  return async (argv: string[]): Promise<number> => {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...CLIENT_OPTIONS, model: { type: "string" }, run: { type: "string" }, yes: { type: "boolean", short: "y" } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      process.stdout.write(agentHelp(mode));
      return 0;
    }
    const prompt = positionals.join(" ").trim();
    if (!prompt) throw new Error(`spool ${mode} needs a PROMPT`);
    const { client } = await connectClient(values, `spool-${mode}`);
    try {
      return await drive(client, mode, prompt, { model: values.model, run: values.run, yes: Boolean(values.yes) });
    } finally {
      client.close();
    }
  };
}

async function drive(client: SpoolClient, mode: "ask" | "act", prompt: string, options: { model?: string; run?: string; yes: boolean }): Promise<number> {
  const colours = palette();
  const errColours = palette(process.stderr);
  const spin = spinner(Boolean(process.stderr.isTTY));
  const questions = new Questions();
  const always = new Set<string>();
  let alias = options.run;
  let streaming: { path: string } | null = null;
  let interrupts = 0;
  let atLineStart = true;
  /** The text of the model's last reply (run/state "model replied"), streamed above as run/progress. */
  let lastReply: string | null = null;
  const say = (text: string) => {
    spin.stop();
    if (!atLineStart) process.stdout.write("\n");
    process.stdout.write(`${text}\n`);
    atLineStart = true;
  };

  let settle!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (settle = resolve));
  let queue = Promise.resolve();

  const onProposal = async (p: Proposal) => {
    say(`${colours.cyan("▶ proposal")} ${colours.bold(p.command)} ${colours.dim(`(${p.tool}, ${p.path})`)}`);
    let answer: string | null = options.yes || always.has(p.command) ? "y" : null;
    if (answer === "y") say(colours.dim(options.yes ? "  accepting: --yes" : "  accepted: you said always for this command"));
    while (answer === null || !/^[yna]$/i.test(answer)) {
      answer = await questions.ask("  Accept? [y]es / [n]o / [a]lways for this command in this run: ");
      if (answer === null) answer = "n"; // stdin closed: nobody can accept
      answer = answer.trim().toLowerCase().slice(0, 1) || "?";
    }
    atLineStart = true;
    if (answer === "a") always.add(p.command);
    if (answer === "n") {
      await client.call("run/resolve", { run: p.run, path: p.path, decision: "reject", reason: "rejected from the spool CLI" });
      say(colours.yellow("  rejected"));
      return;
    }
    const resolved = await client.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
    say(colours.green(`  accepted, running on ${resolved.runner ?? "?"}`));
    streaming = { path: p.path };
    const watch = await client.watch({ run: p.run, path: p.path }, (chunk) => {
      spin.stop();
      if (chunk.channel === 2) process.stderr.write(errColours.on ? errColours.red(chunk.data.toString()) : chunk.data);
      else process.stdout.write(chunk.data);
      atLineStart = chunk.data.at(-1) === 10;
    });
    const ended = await watch.ended;
    streaming = null;
    const status = [...ended.values()][0];
    const code = status?.exit_code;
    say(colours.dim(`  finished: status ${status?.status}${code !== undefined && code !== null ? `, exit ${code}` : ""}`));
  };

  client.on("run/proposal", (p) => {
    if (p.run !== alias) return;
    // One proposal at a time, in order: questions never interleave.
    queue = queue.then(() => onProposal(p)).catch((error) => say(errColours.red(`error: ${error instanceof Error ? error.message : String(error)}`)));
  });
  client.on("run/progress", (p) => {
    if (p.run !== alias) return;
    spin.stop();
    process.stdout.write(p.delta);
    atLineStart = p.delta.endsWith("\n");
  });
  client.on("run/state", (p) => {
    if (p.run !== alias) return;
    if (p.event === "model call" || p.event === "loop started" || p.event === "tool call") spin.start();
    if (p.event === "model replied" || p.event === "waiting on a proposal") spin.stop();
    if (p.event === "model replied") lastReply = typeof p.text === "string" ? p.text : null;
    if (p.event === "loop finished" && p.summary) {
      // A loop that ended with a text answer has that answer as its summary: it was streamed already, so it is not printed twice.
      if (lastReply !== null && String(p.summary).trim() === lastReply.trim()) say(colours.green("✔ done"));
      else say(`${colours.green("✔ done:")} ${String(p.summary)}`);
    }
    if (p.event === "loop failed") say(errColours.red(`✖ failed: ${String(p.error)}`));
    if (p.status === RUN.done && p.event === "idle") settle(0);
    if (p.status === RUN.failed) settle(1);
    if (p.status === RUN.aborted) settle(130);
  });

  const onSigint = () => {
    interrupts++;
    if (interrupts === 1 && streaming) {
      say(colours.yellow("^C cancelling the running command (Ctrl-C again aborts the run)"));
      void client.call("stream/cancel", { run: alias!, path: streaming.path, reason: "cancelled with Ctrl-C" }).catch(() => undefined);
      return;
    }
    say(colours.yellow("^C aborting the run"));
    void client.call("run/abort", { run: alias!, reason: "aborted with Ctrl-C" }).catch(() => settle(130));
  };
  process.on("SIGINT", onSigint);
  try {
    spin.start();
    if (alias && (await client.call("run/get", { run: alias }).catch(() => null))) {
      say(colours.dim(`run ${alias}`));
      await client.call("run/prompt", { run: alias, prompt, mode });
    } else {
      if (!options.model) throw new Error(`spool ${mode} needs --model ALIAS (see spool models)`);
      // Listen before creating, so nothing the run does is missed.
      alias ??= `cli-${Date.now().toString(36)}`;
      say(colours.dim(`run ${alias}`));
      await client.call("run/create", { alias, model: options.model, prompt, mode });
    }
    const code = await finished;
    await queue; // the last proposal's output has been shown
    spin.stop();
    if (!atLineStart) process.stdout.write("\n");
    return code;
  } finally {
    process.off("SIGINT", onSigint);
    questions.close();
    spin.stop();
  }
}
