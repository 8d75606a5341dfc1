import { parseArgs } from "node:util";
import { nearest } from "../protocol/nearest.js";
import { usageError } from "./errors.js";

/**
 * The command table's one row: what parses a command's arguments is also what its `--help` shows and what the
 * completion scripts offer (src/cli/commands/completion.ts), so an option cannot be parsed without being described, nor
 * offered by Tab completion to a command that refuses it.
 */
export interface OptionDef {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  /** The value's placeholder in the help (`--lines N`). */
  readonly arg?: string;
  /** Its description; further lines after "\n", aligned under the first. */
  readonly help: string;
  /** A line drawn above it: the options from here on belong together (` docker:`). */
  readonly heading?: string;
}

export type OptionTable = Readonly<Record<string, OptionDef>>;

export interface CommandSpec<O extends OptionTable = OptionTable> {
  readonly name: string;
  /** The usage line(s) after "Usage: ", e.g. "spool tail [RUN [CMD]] [-f]"; more forms on lines of their own. */
  readonly usage: string;
  /** What it does, and what its arguments are. */
  readonly about: string;
  readonly options: O;
  /** Takes the connection options (--server, --token-file, --project) and describes them. */
  readonly connects?: boolean;
  /** The heading over its own options (default "Options:"). */
  readonly optionsTitle?: string;
  /** The column the options' descriptions start at, after the two-space indent (default 20). */
  readonly width?: number;
  /** Said after the options. */
  readonly epilogue?: string;
  /** How many arguments it takes at the most (commandOf refuses more); unset, the body checks them. */
  readonly maxArgs?: number;
  /** Subcommands with rows of their own (`spool mcp add`): their first word, and their row. */
  readonly subcommands?: Readonly<Record<string, CommandSpec>>;
}

/** A command: its row of the table, and its body (given the arguments after its name). */
export interface Command {
  readonly spec: CommandSpec;
  readonly run: (argv: string[]) => Promise<number>;
}

/** Flags every client command takes. */
export const CLIENT_OPTIONS = {
  server: {
    type: "string",
    arg: "URL",
    help: `the server          [$SPOOL_SERVER, default: the home's Unix socket
$SPOOL_HOME/spool.sock when it is there, else ws://HOST:PORT/ from
$SPOOL_HOST / $SPOOL_PORT / "host" and "port" in config.json, else
127.0.0.1:7420, where the server must prove it holds the token first]`,
  },
  "token-file": { type: "string", arg: "PATH", help: "its token           [$SPOOL_TOKEN_FILE, default: $SPOOL_HOME/token, ~/.spool/token]" },
  project: {
    type: "string",
    arg: "NAME",
    help: `project             [$SPOOL_PROJECT, default: found from this directory
upwards: .spool/project.json (spool init), else a git repository's root]`,
  },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const satisfies OptionTable;

/** -h, --help for a command without the connection options. */
export const HELP_OPTION = { help: CLIENT_OPTIONS.help } as const satisfies OptionTable;

export const JSON_OPTION = { json: { type: "boolean", help: "print JSON instead of a table" } } as const satisfies OptionTable;

/** The options' lines of a help: `  -f, --follow        keep printing …`, a label too long for its column alone on its line. */
export function optionLines(options: OptionTable, width = 20): string {
  const indent = " ".repeat(width + 2);
  return Object.entries(options)
    .map(([name, o]) => {
      const label = `${o.short ? `-${o.short}, ` : ""}--${name}${o.arg ? ` ${o.arg}` : ""}`;
      const [first, ...more] = o.help.split("\n");
      const head = label.length < width ? `  ${label.padEnd(width)}${first}` : `  ${label}\n${indent}${first}`;
      return [...(o.heading ? [o.heading] : []), head, ...more.map((line) => `${indent}${line}`)].join("\n");
    })
    .join("\n");
}

/** The connection's options as a help shows them, but those a command gives a meaning of its own (token's --project). */
export function connectionHelp(own: OptionTable = {}): string {
  const shown = Object.fromEntries(Object.entries(CLIENT_OPTIONS).filter(([name]) => !(name in own)));
  return `Connection (the same settings as spool serve: flag, environment, $SPOOL_HOME/config.json):\n${optionLines(shown)}\n`;
}

/** A row of the table, its options' types kept (what parseSpec's values are typed by). */
export const defineCommand = <const O extends OptionTable>(spec: CommandSpec<O>): CommandSpec<O> => spec;

/**
 * The options a command parses: its own, then the connection's when it connects (its own win a shared name).
 * Typed as if it connected: a command that does not never sees the connection's flags set (they are refused).
 */
export function optionsOf<O extends OptionTable>(spec: CommandSpec<O>): Omit<typeof CLIENT_OPTIONS, keyof O> & O {
  return (spec.connects ? { ...CLIENT_OPTIONS, ...spec.options } : { ...HELP_OPTION, ...spec.options }) as Omit<typeof CLIENT_OPTIONS, keyof O> & O;
}

/** A command's `--help`, written from its row. */
export function helpText(spec: CommandSpec): string {
  const own = Object.keys(spec.options).length > 0;
  if (spec.connects) {
    const options = own ? `${spec.optionsTitle ?? "Options:"}\n${optionLines(spec.options, spec.width)}\n\n` : "";
    return `Usage: ${spec.usage}\n\n${spec.about}\n\n${options}${spec.epilogue ? `${spec.epilogue}\n\n` : ""}${connectionHelp(spec.options)}`;
  }
  const options = optionLines({ ...spec.options, ...HELP_OPTION }, spec.width);
  return `Usage: ${spec.usage}\n\n${spec.about}\n\n${spec.optionsTitle ?? "Options:"}\n${options}\n${spec.epilogue ? `\n${spec.epilogue}\n` : ""}`;
}

/** The words Tab completion offers for a command's options: `--lines` and `-n`, sorted. */
export function completionWords(spec: CommandSpec): string[] {
  const words = Object.entries(optionsOf(spec)).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
  return [...new Set(words)].sort();
}

/** Whether the command's first argument is a run (Tab completion offers the project's runs there). */
export const takesRun = (spec: CommandSpec) => /^spool \S+ \[?RUN\b/.test(spec.usage);

type ParseOptions = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

/** Parses a command's arguments strictly; a mistake is a usage error naming the command's help, with the nearest option. */
export function parseCommand<O extends ParseOptions>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message.replace(/\. To specify a positional argument.*$/s, "") : String(error);
    const unknown = /^Unknown option '(-{1,2})([^']+)'/.exec(message);
    // A short option (-n) is matched by its letter to the long ones (--lines), a long one by spelling.
    const near = !unknown
      ? null
      : unknown[1] === "-"
        ? (Object.keys(options).find((name) => name.startsWith(unknown[2]!) && !(options[name] as { short?: string }).short) ?? null)
        : nearest(unknown[2]!, Object.keys(options));
    throw usageError(`${message}${near ? ` — did you mean --${near}?` : ""} (see \`spool help ${command}\`)`);
  }
}

/** Parses `argv` by a command's row: its options and, when it connects, the connection's. */
export function parseSpec<O extends OptionTable>(spec: CommandSpec<O>, argv: string[]) {
  return parseCommand(spec.name, argv, optionsOf(spec));
}

/** The help on stdout (`spool CMD --help`): exit 0. */
export function showHelp(spec: CommandSpec): number {
  process.stdout.write(helpText(spec));
  return 0;
}

/** Exactly `names.length` positional arguments, or a usage error naming what is missing or extra. */
export function positionals(command: string, given: string[], names: string[], most = names.length): string[] {
  if (given.length < names.length) throw usageError(`spool ${command} needs ${names.join(" and ")} (see \`spool help ${command}\`)`);
  if (given.length > most) throw usageError(`spool ${command}: unexpected argument "${given[most]}" (see \`spool help ${command}\`)`);
  return given;
}

/**
 * A command from its row and its body: the arguments parsed by the row, --help answered from it, more
 * arguments than `maxArgs` refused; the body gets the values and the arguments.
 */
export function commandOf<const O extends OptionTable>(
  spec: CommandSpec<O>,
  body: (values: ReturnType<typeof parseSpec<O>>["values"], args: string[]) => Promise<number>,
): Command {
  return {
    spec,
    run: async (argv) => {
      const { values, positionals: rest } = parseSpec(spec, argv);
      // Every row parses -h / --help (optionsOf adds it); the type of a row's values in general cannot say so.
      if ((values as { help?: boolean }).help) return showHelp(spec);
      if (spec.maxArgs !== undefined) positionals(spec.name, rest, [], spec.maxArgs);
      return body(values, rest);
    },
  };
}
