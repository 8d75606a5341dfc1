import { agentCommand, agentHelp } from "./agent.js";
import { CANCEL, ENTRIES, MODELS, RUNS, TAIL } from "./client-commands.js";
import { RUNNER_HELP, runner } from "./runner.js";
import { SERVE_HELP, serve } from "./serve.js";

const HELP = `Usage: spool <command> [options]

Commands:
  serve     start the server with its database and embedded local runner
  ask       ask a model about the project (read-only tools)
  act       give a model a task: it proposes commands you accept or reject
  runner    attach a runner (local, docker, ssh) to a server
  tail      print a command's output, or follow it live
  cancel    cancel a running command
  runs      list the project's runs
  entries   list a run's entries
  models    list the configured models

Run "spool <command> --help" for a command's options.
`;

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  serve: { run: serve, help: SERVE_HELP },
  runner: { run: runner, help: RUNNER_HELP },
  ask: { run: agentCommand("ask"), help: agentHelp("ask") },
  act: { run: agentCommand("act"), help: agentHelp("act") },
  tail: TAIL,
  cancel: CANCEL,
  runs: RUNS,
  entries: ENTRIES,
  models: MODELS,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(HELP);
    return command ? 0 : 2;
  }
  const entry = COMMANDS[command];
  if (!entry) {
    process.stderr.write(`spool: unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  try {
    return await entry.run(rest);
  } catch (error) {
    process.stderr.write(`spool ${command}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}
