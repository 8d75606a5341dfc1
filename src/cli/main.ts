import { SERVER_VERSION } from "../version.js";
import { ACP_HELP, acp } from "./acp.js";
import { agentCommand, agentHelp } from "./agent.js";
import { ATTACH } from "./attach.js";
import { APPROVE, CANCEL, type Command, ENTRIES, INIT, MODELS, PENDING, REJECT, RUNNERS, RUNS, TAIL } from "./client-commands.js";
import { currentTarget } from "./common.js";
import { EXIT, explain } from "./errors.js";
import { INPUT } from "./input.js";
import { OPEN_HELP, open } from "./open.js";
import { RUNNER_HELP, runner } from "./runner.js";
import { SERVE_HELP, serve } from "./serve.js";

const COMMANDS: Record<string, Command> = {
  serve: { summary: "start the server with its database and embedded local runner", help: SERVE_HELP, run: serve },
  init: INIT,
  ask: { summary: "ask a model about the project (read-only tools)", help: agentHelp("ask"), run: agentCommand("ask") },
  act: { summary: "give a model a task: it proposes commands you accept or reject", help: agentHelp("act"), run: agentCommand("act") },
  pending: PENDING,
  approve: APPROVE,
  reject: REJECT,
  tail: TAIL,
  cancel: CANCEL,
  input: INPUT,
  attach: ATTACH,
  runs: RUNS,
  entries: ENTRIES,
  runners: RUNNERS,
  models: MODELS,
  runner: { summary: "attach a runner (local, docker, ssh) to a server", help: RUNNER_HELP, run: runner },
  acp: { summary: "serve an editor over the Agent Client Protocol (stdio)", help: ACP_HELP, run: acp },
  open: { summary: "print (or open) a link that signs a browser into the web view", help: OPEN_HELP, run: open },
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
    return print(entry.help);
  }
  const entry = COMMANDS[command];
  if (!entry) return unknown(command);
  try {
    return await entry.run(rest);
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
