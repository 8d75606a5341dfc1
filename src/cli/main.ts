import { SERVER_VERSION } from "../version.js";
import { currentTarget } from "./common.js";
import { EXIT, explain } from "./errors.js";

/** A command's help and body, loaded when it runs (so `spool tail` never loads the server, Docker or SSH code). */
interface Loaded {
  help: string;
  run: (argv: string[]) => Promise<number>;
}

const clientCommand = (name: "INIT" | "PENDING" | "APPROVE" | "REJECT" | "TAIL" | "CANCEL" | "RUNS" | "ENTRIES" | "RUNNERS" | "MODELS") => async () =>
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
  runs: { summary: "list the project's runs", load: clientCommand("RUNS") },
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
  .map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`)
  .join("\n")}

  help CMD  a command's options          --version  print the version

Exit codes: 0 done, 1 failed, 2 usage error, 3 no server / connection lost,
4 not found, 130 interrupted or aborted.
`;

/** Commands that keep running until stopped; they deal with their own output. */
const SERVICES = new Set(["serve", "runner"]);

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!SERVICES.has(command ?? "")) quietOnClosedPipe();
  if (!command) {
    process.stderr.write(HELP);
    return EXIT.usage;
  }
  if (command === "--help" || command === "-h") return print(HELP);
  if (command === "--version" || command === "-V" || command === "version") return print(`spool ${SERVER_VERSION}\n`);
  if (command === "help") {
    const [topic, extra] = rest;
    if (!topic) return print(HELP);
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
    process.stderr.write(`spool ${command}: ${message}\n`);
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
  let best: { name: string; distance: number } | null = null;
  for (const name of names) {
    const distance = name.startsWith(typed) && typed.length >= 2 ? 1 : editDistance(typed.toLowerCase(), name);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name ?? null;
}

/** Edits (insert, delete, replace, swap two neighbours) turning `a` into `b`. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** `spool tail … | head`: once the reader is gone, there is nobody to tell; end quietly. */
function quietOnClosedPipe(): void {
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
