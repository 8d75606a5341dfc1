import { Writable } from "node:stream";
import { nativeDiagnosis, nativeLoadError } from "../ops/native.js";
import { SERVER_VERSION } from "../version.js";
import { type Command, type CommandSpec, completionWords, helpText, parseSpec, takesRun } from "./command-spec.js";
import { currentTarget, nearest } from "./common.js";
import type { Completed } from "./completion.js";
import { EXIT, exitCodesHelp, explain } from "./errors.js";

/** The command table's index: each command's row and body are loaded when it runs (so `spool tail` never loads the server, Docker or SSH code). */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  serve: { summary: "start the server with its database and embedded local runner", load: async () => (await import("./serve.js")).SERVE },
  init: { summary: "mark this directory as a Spool project's root", load: async () => (await import("./commands/init.js")).INIT },
  ask: { summary: "ask a model about the project (read-only tools)", load: async () => (await import("./agent/command.js")).agentCommand("ask") },
  act: {
    summary: "give a model a task: it proposes commands you accept or reject",
    load: async () => (await import("./agent/command.js")).agentCommand("act"),
  },
  pending: { summary: "list proposals waiting for a decision", load: async () => (await import("./commands/decide.js")).PENDING },
  approve: { summary: "accept a pending proposal", load: async () => (await import("./commands/decide.js")).APPROVE },
  reject: { summary: "reject a pending proposal", load: async () => (await import("./commands/decide.js")).REJECT },
  tail: { summary: "print a command's output, or follow it live", load: async () => (await import("./commands/tail.js")).TAIL },
  cancel: { summary: "cancel a running command", load: async () => (await import("./commands/control.js")).CANCEL },
  input: { summary: "type into a running command (its stdin or terminal)", load: async () => (await import("./input.js")).INPUT },
  attach: { summary: "connect this terminal to a running command (Ctrl-] detaches)", load: async () => (await import("./attach.js")).ATTACH },
  abort: {
    summary: "abort a run: its model, pending proposals and running commands",
    load: async () => (await import("./commands/control.js")).ABORT,
  },
  runs: { summary: "list the project's runs (--all: every project's)", load: async () => (await import("./commands/lists.js")).RUNS },
  show: { summary: "show a run: its conversation and its numbered commands", load: async () => (await import("./commands/show.js")).SHOW },
  entries: { summary: "list a run's proposals, outputs and errors", load: async () => (await import("./commands/lists.js")).ENTRIES },
  runners: { summary: "list the project's runners", load: async () => (await import("./commands/lists.js")).RUNNERS },
  models: { summary: "list the configured models", load: async () => (await import("./commands/lists.js")).MODELS },
  runner: { summary: "attach a runner (local, docker, ssh) to a server", load: async () => (await import("./runner.js")).RUNNER },
  acp: { summary: "serve an editor over the Agent Client Protocol (stdio)", load: async () => (await import("./acp.js")).ACP },
  mcp: { summary: "run an MCP agent's commands through Spool (stdio)", load: async () => (await import("./mcp.js")).MCP },
  token: {
    summary: "create, list and revoke credentials (roles: runner, viewer, agent, person, admin)",
    load: async () => (await import("./token.js")).TOKEN,
  },
  devices: {
    summary: "list the browsers signed in to the web view (paired devices), or unpair one",
    load: async () => (await import("./devices.js")).DEVICES,
  },
  notify: {
    summary: "tell a webhook, Slack or ntfy when a proposal waits, is decided, finishes or expires",
    load: async () => (await import("./notify.js")).NOTIFY,
  },
  audit: { summary: "print the audit trail: who proposed, decided, cancelled, typed, signed in", load: async () => (await import("./audit.js")).AUDIT },
  completion: {
    summary: "print a tab-completion script (bash, zsh, fish)",
    load: async () => ({ spec: (await import("./completion.js")).COMPLETION_SPEC, run: completion }),
  },
  doctor: { summary: "check what this machine gives Spool, with the fix for each problem", load: async () => (await import("./doctor.js")).DOCTOR },
  open: { summary: "print (or open) a link that signs a browser into the web view", load: async () => (await import("./open.js")).OPEN },
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

/** `spool completion SHELL`: the script, each command's options read from the table that parses them. */
async function completion(argv: string[]): Promise<number> {
  const m = await import("./completion.js");
  const { values, positionals } = parseSpec(m.COMPLETION_SPEC, argv);
  if (values.help) return print(helpText(m.COMPLETION_SPEC));
  const [shell, extra] = positionals;
  if (extra !== undefined || !shell || !["bash", "zsh", "fish"].includes(shell)) {
    process.stderr.write(`spool completion: name one shell: bash, zsh or fish\n${helpText(m.COMPLETION_SPEC)}`);
    return EXIT.usage;
  }
  const commands: Record<string, Completed> = {};
  for (const [name, spec] of Object.entries(await commandTable())) commands[name] = { options: completionWords(spec), takesRun: takesRun(spec) };
  return print(m.completionScript(shell, commands)!);
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
