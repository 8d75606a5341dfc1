import { Writable } from "node:stream";
import { SERVER_VERSION } from "../version.js";
import { currentTarget, nearest } from "./common.js";
import { EXIT, explain } from "./errors.js";

/** A command's help and body, loaded when it runs (so `spool tail` never loads the server, Docker or SSH code). */
interface Loaded {
  help: string;
  run: (argv: string[]) => Promise<number>;
}

const clientCommand =
  (name: "INIT" | "PENDING" | "APPROVE" | "REJECT" | "TAIL" | "CANCEL" | "ABORT" | "SHOW" | "RUNS" | "ENTRIES" | "RUNNERS" | "MODELS") => async () =>
    (await import("./client-commands.js"))[name];

const COMMANDS: Record<string, { summary: string; load: () => Promise<Loaded> }> = {
  serve: {
    summary: "start the server with its database and embedded local runner",
    load: async () => {
      const m = await import("./serve.js");
      return { help: m.SERVE_HELP, run: m.serve };
    },
  },
  init: { summary: "mark this directory as a Spool project's root", load: clientCommand("INIT") },
  ask: {
    summary: "ask a model about the project (read-only tools)",
    load: async () => {
      const m = await import("./agent.js");
      return { help: m.agentHelp("ask"), run: m.agentCommand("ask") };
    },
  },
  act: {
    summary: "give a model a task: it proposes commands you accept or reject",
    load: async () => {
      const m = await import("./agent.js");
      return { help: m.agentHelp("act"), run: m.agentCommand("act") };
    },
  },
  pending: { summary: "list proposals waiting for a decision", load: clientCommand("PENDING") },
  approve: { summary: "accept a pending proposal", load: clientCommand("APPROVE") },
  reject: { summary: "reject a pending proposal", load: clientCommand("REJECT") },
  tail: { summary: "print a command's output, or follow it live", load: clientCommand("TAIL") },
  cancel: { summary: "cancel a running command", load: clientCommand("CANCEL") },
  input: { summary: "type into a running command (its stdin or terminal)", load: async () => (await import("./input.js")).INPUT },
  attach: { summary: "connect this terminal to a running command (Ctrl-] detaches)", load: async () => (await import("./attach.js")).ATTACH },
  abort: { summary: "abort a run: its model, pending proposals and running commands", load: clientCommand("ABORT") },
  runs: { summary: "list the project's runs (--all: every project's)", load: clientCommand("RUNS") },
  show: { summary: "show a run: its conversation and its numbered commands", load: clientCommand("SHOW") },
  entries: { summary: "list a run's proposals, outputs and errors", load: clientCommand("ENTRIES") },
  runners: { summary: "list the project's runners", load: clientCommand("RUNNERS") },
  models: { summary: "list the configured models", load: clientCommand("MODELS") },
  runner: {
    summary: "attach a runner (local, docker, ssh) to a server",
    load: async () => {
      const m = await import("./runner.js");
      return { help: m.RUNNER_HELP, run: m.runner };
    },
  },
  acp: {
    summary: "serve an editor over the Agent Client Protocol (stdio)",
    load: async () => {
      const m = await import("./acp.js");
      return { help: m.ACP_HELP, run: m.acp };
    },
  },
  mcp: { summary: "run an MCP agent's commands through Spool (stdio)", load: () => import("./mcp.js").then((m) => ({ help: m.MCP_HELP, run: m.mcp })) },
  token: {
    summary: "create, list and revoke credentials (roles: runner, viewer, agent, person, admin)",
    load: async () => {
      const m = await import("./token.js");
      return { help: m.TOKEN_HELP, run: m.token };
    },
  },
  completion: {
    summary: "print a tab-completion script (bash, zsh, fish)",
    load: async () => {
      const m = await import("./completion.js");
      return { help: m.COMPLETION_HELP, run: completion };
    },
  },
  doctor: {
    summary: "check what this machine gives Spool, with the fix for each problem",
    load: async () => {
      const m = await import("./doctor.js");
      return { help: m.DOCTOR_HELP, run: (argv) => m.doctor(argv) };
    },
  },
  open: {
    summary: "print (or open) a link that signs a browser into the web view",
    load: async () => {
      const m = await import("./open.js");
      return { help: m.OPEN_HELP, run: m.open };
    },
  },
};

const HELP = `Usage: spool <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join("\n")}

  help CMD   a command's options         -v, --version  print the version

Exit codes: 0 done, 1 failed, 2 usage error, 3 no server / connection lost,
4 not found, 130 interrupted or aborted.
`;

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
    return print((await entry.load()).help);
  }
  const entry = COMMANDS[command];
  if (!entry) return unknown(command);
  try {
    return await (await entry.load()).run(rest);
  } catch (error) {
    const { message, code } = explain(error, currentTarget);
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

/** `spool completion SHELL`: the script, with each command's options read from its help. */
async function completion(argv: string[]): Promise<number> {
  const m = await import("./completion.js");
  const [shell, extra] = argv;
  if (shell === "--help" || shell === "-h") return print(m.COMPLETION_HELP);
  if (extra !== undefined || !shell || !["bash", "zsh", "fish"].includes(shell)) {
    process.stderr.write(`spool completion: name one shell: bash, zsh or fish\n${m.COMPLETION_HELP}`);
    return EXIT.usage;
  }
  const commands: Record<string, string[]> = {};
  for (const [name, entry] of Object.entries(COMMANDS)) commands[name] = name === "completion" ? [] : m.optionsOf((await entry.load()).help);
  return print(m.completionScript(shell, commands)!);
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
