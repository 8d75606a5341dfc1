/*
 * The `spool` command. Where its files live, one rule (test/architecture.test.ts checks it):
 * - this file is the command table: each command's name, summary and loader, and nothing of any command's body;
 * - src/cli/commands/ holds every command's body and its row (spec): one file a command or a family of them
 *   (decide.ts: pending, approve, reject; agent/: ask and act), and the parts only that command uses beside it
 *   (tail-grep.ts, typed-lines.ts);
 * - src/cli/ itself holds what the commands share (the row's type and parsing, connecting, references, errors and
 *   exit codes, the terminal writer), and never imports src/cli/commands/.
 */
import { Writable } from "node:stream";
import { nativeDiagnosis, nativeLoadError } from "../ops/native.js";
import { BACKEND_NAMES } from "../protocol/backends.js";
import { SERVER_VERSION } from "../version.js";
import { type Command, type CommandSpec, helpText } from "./command-spec.js";
import { currentTarget, nearest } from "./common.js";
import { EXIT, exitCodesHelp, explain } from "./errors.js";

/** The command table's index: each command's row and body are loaded when it runs (so `spool tail` never loads the server, Docker or SSH code). */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  serve: { summary: "start the server with its database and embedded local runner", load: async () => (await import("./commands/serve.js")).SERVE },
  init: { summary: "mark this directory as a Spool project's root", load: async () => (await import("./commands/init.js")).INIT },
  ask: { summary: "ask a model about the project (read-only tools)", load: async () => (await import("./commands/agent/command.js")).agentCommand("ask") },
  act: {
    summary: "give a model a task: it proposes commands you accept or reject",
    load: async () => (await import("./commands/agent/command.js")).agentCommand("act"),
  },
  pending: { summary: "list proposals waiting for a decision", load: async () => (await import("./commands/decide.js")).PENDING },
  approve: { summary: "accept a pending proposal", load: async () => (await import("./commands/decide.js")).APPROVE },
  reject: { summary: "reject a pending proposal", load: async () => (await import("./commands/decide.js")).REJECT },
  tail: { summary: "print a command's output, or follow it live", load: async () => (await import("./commands/tail.js")).TAIL },
  cancel: { summary: "cancel a running command", load: async () => (await import("./commands/control.js")).CANCEL },
  input: { summary: "type into a running command (its stdin or terminal)", load: async () => (await import("./commands/input.js")).INPUT },
  attach: { summary: "connect this terminal to a running command (Ctrl-] detaches)", load: async () => (await import("./commands/attach.js")).ATTACH },
  abort: {
    summary: "abort a run: its model, pending proposals and running commands",
    load: async () => (await import("./commands/control.js")).ABORT,
  },
  budget: { summary: "show or raise a run's budget (a paused run goes on)", load: async () => (await import("./commands/budget.js")).BUDGET },
  projects: {
    summary: "list the server's projects, add one by its directory, or remove one",
    load: async () => (await import("./commands/projects.js")).PROJECTS,
  },
  runs: { summary: "list the project's runs (--all: every project's)", load: async () => (await import("./commands/lists.js")).RUNS },
  show: { summary: "show a run: its conversation and its numbered commands", load: async () => (await import("./commands/show.js")).SHOW },
  entries: { summary: "list a run's proposals, outputs and errors", load: async () => (await import("./commands/lists.js")).ENTRIES },
  runners: { summary: "the project's runners and pools; drain one", load: async () => (await import("./commands/runners.js")).RUNNERS },
  models: { summary: "list the configured models", load: async () => (await import("./commands/lists.js")).MODELS },
  runner: { summary: `attach a runner (${BACKEND_NAMES.join(", ")}) to a server`, load: async () => (await import("./commands/runner.js")).RUNNER },
  acp: { summary: "serve an editor over the Agent Client Protocol (stdio)", load: async () => (await import("./commands/acp.js")).ACP },
  mcp: { summary: "run an MCP agent's commands through Spool (stdio)", load: async () => (await import("./commands/mcp.js")).MCP },
  token: {
    summary: "create, list and revoke credentials (roles: runner, viewer, agent, person, admin)",
    load: async () => (await import("./commands/token.js")).TOKEN,
  },
  devices: {
    summary: "list the browsers signed in to the web view (paired devices), or unpair one",
    load: async () => (await import("./commands/devices.js")).DEVICES,
  },
  notify: {
    summary: "tell a webhook, Slack or ntfy when a proposal waits, is decided, finishes or expires",
    load: async () => (await import("./commands/notify.js")).NOTIFY,
  },
  audit: {
    summary: "print the audit trail: who proposed, decided, cancelled, typed, signed in",
    load: async () => (await import("./commands/audit.js")).AUDIT,
  },
  completion: {
    summary: "print a tab-completion script (bash, zsh, fish)",
    load: async () => (await import("./commands/completion.js")).completionCommand(commandTable),
  },
  doctor: { summary: "check what this machine gives Spool, with the fix for each problem", load: async () => (await import("./commands/doctor.js")).DOCTOR },
  open: { summary: "print (or open) a link that signs a browser into the web view", load: async () => (await import("./commands/open.js")).OPEN },
};

const HELP = `Usage: spool <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join("\n")}

  help CMD   a command's options         -v, --version  print the version

${exitCodesHelp()}`;

/** Commands that keep running until stopped; they deal with their own output. */
const SERVICES = new Set(["serve", "runner"]);

/**
 * Runs one command; resolves with its exit code once everything it wrote has left the process. A pipe is written
 * asynchronously in Node (at its reader's pace, past the 64 KiB the kernel holds): whoever exits after main
 * returns loses nothing.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    return await command(argv);
  } finally {
    await written(process.stdout);
    await written(process.stderr);
  }
}

/** Resolves once what was written to `stream` so far has been handed to the system (at once when nothing waits). */
function written(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableLength === 0 || stream.destroyed || stream.writableEnded) return Promise.resolve();
  // Writes leave in order: the callback of an empty one runs once every earlier one has gone. (The stream's own
  // write: a test that replaces process.stdout.write to capture a command's text never calls callbacks.)
  return new Promise((resolve) => Writable.prototype.write.call(stream, "", "utf8", () => resolve()));
}

async function command(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!SERVICES.has(command ?? "")) quietOnClosedPipe();
  if (!command) {
    process.stderr.write(HELP);
    return EXIT.usage;
  }
  if (command === "--help" || command === "-h") return print(HELP);
  if (command === "--version" || command === "-v" || command === "-V" || command === "version") return print(`spool ${SERVER_VERSION}\n`);
  if (command === "help") {
    const [topic, extra] = rest;
    if (!topic || topic === "--help" || topic === "-h" || topic === "help") return print(HELP);
    const entry = COMMANDS[topic];
    if (!entry || extra !== undefined) return unknown(topic);
    return print(helpText((await entry.load()).spec));
  }
  const entry = COMMANDS[command];
  if (!entry) return unknown(command);
  try {
    return await (await entry.load()).run(rest);
  } catch (error) {
    // A native module built for another Node (better-sqlite3, node-pty), whichever command loaded it: one line that
    // names it, both ABIs and the fix, not the loader's message.
    const native = nativeLoadError(error);
    const { message, code } = native ? { message: nativeDiagnosis(native), code: EXIT.failed } : explain(error, currentTarget);
    // Said once: a message that names the command already ("spool act needs a PROMPT") gets no prefix.
    process.stderr.write(new RegExp(`^spool ${command}[ :]`).test(message) ? `${message}\n` : `spool ${command}: ${message}\n`);
    return code;
  }
}

function print(text: string): number {
  process.stdout.write(text);
  return EXIT.ok;
}

function unknown(command: string): number {
  const near = suggest(command, Object.keys(COMMANDS));
  process.stderr.write(`spool: unknown command "${command}"${near ? ` — did you mean "${near}"?` : ""} (\`spool help\` lists them)\n`);
  return EXIT.usage;
}

/** The command closest to a mistyped one: at most two edits away (or a prefix of it). */
export function suggest(typed: string, names: string[]): string | null {
  return nearest(typed, names);
}

/** Every command's row of the table, loaded: what completion is written from (and what test/cli/command-table checks). */
export async function commandTable(): Promise<Record<string, CommandSpec>> {
  const table: Record<string, CommandSpec> = {};
  for (const [name, entry] of Object.entries(COMMANDS)) table[name] = (await entry.load()).spec;
  return table;
}

/** `spool tail … | head`: once the reader is gone, there is nobody to tell; end quietly. */
let quietInstalled = false;
function quietOnClosedPipe(): void {
  // Once per process (tests call main() many times).
  if (quietInstalled) return;
  quietInstalled = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE") process.exit(EXIT.ok);
      throw error;
    });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
