import { type CommandSpec, type OptionTable, optionsOf, parseCommand, showHelp } from "./command-spec.js";
import { connectionLost, connectServer, printRows } from "./common.js";
import { EXIT, usageError } from "./errors.js";

type Client = Awaited<ReturnType<typeof connectServer>>;

/**
 * The start the admin commands with subcommands share (`spool token`, `spool notify`): help, the subcommand's options
 * and arguments, and a call made on a connection to the server alone — no project joined: a `--project` there is
 * the command's own scope. An exit code when it only showed help.
 */
export function adminSubcommand<O extends OptionTable>(spec: CommandSpec<O>, argv: string[]) {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    showHelp(spec);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  const { values, positionals } = parseCommand(`${spec.name} ${sub}`, rest, optionsOf(spec));
  // What every connecting command has (CLIENT_OPTIONS), whatever its own options are.
  const common = values as { help?: boolean; server?: string; "token-file"?: string };
  if (common.help) return showHelp(spec);
  /** Refuses a subcommand given other arguments than `names`. */
  const only = (names: string[]) => {
    if (positionals.length !== names.length)
      throw usageError(`spool ${spec.name} ${sub} takes ${names.length ? names.join(" ") : "no argument"} (see \`spool help ${spec.name}\`)`);
  };
  const request = async <T>(call: (client: Client) => Promise<T>): Promise<T> => {
    const client = await connectServer({ server: common.server, "token-file": common["token-file"] });
    try {
      return await Promise.race([call(client), connectionLost(client, "while waiting for its answer")]);
    } finally {
      client.close();
    }
  };
  return { sub, values, positionals, only, request };
}

/** A `list` subcommand's output: JSON as the server sent it; with none, a line saying how to make one; else a table of `row`'s `columns`. */
export function printList<T extends object>(
  items: readonly T[],
  json: boolean | undefined,
  none: string,
  columns: string[],
  row: (item: T) => Record<string, unknown>,
): number {
  if (json) printRows(items as unknown as Record<string, unknown>[], [], true);
  else if (items.length === 0) process.stdout.write(`${none}\n`);
  else printRows(items.map(row), columns, false);
  return EXIT.ok;
}
