import { parseArgs } from "node:util";
import { ENTRY } from "../core/status.js";
import { CLIENT_HELP, CLIENT_OPTIONS, type ClientFlags, connectClient, palette, printRows } from "./common.js";

interface Command {
  run: (argv: string[]) => Promise<number>;
  help: string;
}

const showHelp = (text: string) => {
  process.stdout.write(text);
  return 0;
};

const usage = (line: string, text: string, extra = "") => `Usage: ${line}\n\n${text}\n\n${extra}${CLIENT_HELP}`;

type Flags = ClientFlags & { json?: boolean; help?: boolean } & Record<string, string | boolean | undefined>;

function parse(argv: string[], extra: Record<string, { type: "string" | "boolean"; short?: string }> = {}): { values: Flags; positionals: string[] } {
  const parsed = parseArgs({ args: argv, options: { ...CLIENT_OPTIONS, ...extra }, allowPositionals: true, strict: true });
  return { values: parsed.values as Flags, positionals: parsed.positionals };
}

/** Runs a command body with a connected client, closing it afterwards. */
async function withClient<T>(values: Parameters<typeof connectClient>[0], body: (client: Awaited<ReturnType<typeof connectClient>>["client"]) => Promise<T>) {
  const { client } = await connectClient(values);
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

export const RUNS: Command = {
  help: usage("spool runs [--json]", "Lists the project's runs, newest first.", "  --json              print JSON\n"),
  run: async (argv) => {
    const { values } = parse(argv);
    if (values.help) return showHelp(RUNS.help);
    await withClient(values, async (client) => {
      const { runs } = await client.call("run/list", {});
      printRows(
        runs.map((r) => ({ run: r.alias, status: r.status, model: r.model, mode: r.mode, turn: r.turn, updated: new Date(r.updatedAt).toISOString() })),
        ["run", "status", "model", "mode", "turn", "updated"],
        values.json,
      );
    });
    return 0;
  },
};

export const ENTRIES: Command = {
  help: usage(
    "spool entries RUN [--pattern GLOB] [--json]",
    "Lists a run's entries (proposals, channels, errors), oldest first.",
    "  --pattern GLOB      only paths matching it, e.g. 'sh://*'\n  --json              print JSON\n",
  ),
  run: async (argv) => {
    const { values, positionals } = parse(argv, { pattern: { type: "string" } });
    if (values.help) return showHelp(ENTRIES.help);
    const [run] = positionals;
    if (!run) throw new Error("spool entries needs a RUN (see spool runs)");
    await withClient(values, async (client) => {
      const { entries } = await client.call("entry/list", { run, ...(values.pattern ? { pattern: values.pattern as string } : {}) });
      printRows(
        entries.map((e) => ({ path: e.path, status: e.status, turn: e.turn, bytes: e.bytes, lines: e.lines })),
        ["path", "status", "turn", "bytes", "lines"],
        values.json,
      );
    });
    return 0;
  },
};

export const MODELS: Command = {
  help: usage("spool models [--json]", "Lists the model aliases the server knows (SPOOL_MODEL_<alias>).", "  --json              print JSON\n"),
  run: async (argv) => {
    const { values } = parse(argv);
    if (values.help) return showHelp(MODELS.help);
    await withClient(values, async (client) => {
      const { models } = await client.call("model/list", {});
      printRows(models, ["alias", "provider", "model", "baseUrl"], values.json);
    });
    return 0;
  },
};

export const TAIL: Command = {
  help: usage(
    "spool tail RUN PATH [--follow] [--after SEQ] [--lines N]",
    "Prints a producer's output. PATH is its log path (log://turn_1/sh/…) or one of its channels.\nWith --follow it keeps printing live output until the producer finishes; stderr goes to stderr.",
    "  --follow, -f        keep printing live output until it finishes\n  --after SEQ         with --follow: start after this chunk number\n  --lines N           without --follow: only the last N lines of a channel\n",
  ),
  run: async (argv) => {
    const { values, positionals } = parse(argv, { follow: { type: "boolean", short: "f" }, after: { type: "string" }, lines: { type: "string" } });
    if (values.help) return showHelp(TAIL.help);
    const [run, path] = positionals;
    if (!run || !path) throw new Error("spool tail needs RUN and PATH (see spool entries RUN)");
    const after = values.after !== undefined ? Number(values.after) : 0;
    if (!Number.isInteger(after) || after < 0) throw new Error(`--after must be a chunk number (0 or more), got "${String(values.after)}"`);
    return withClient(values, async (client) => {
      const entry = await client.call("entry/get", {
        run,
        path,
        ...(values.lines ? { tail: Number(values.lines) } : {}),
        ...(values.follow ? { tail: 1 } : {}),
      });
      if (!values.follow) {
        process.stdout.write(entry.body);
        return 0;
      }
      // A channel path follows its producer; the log path follows every channel.
      const log = path.startsWith("log://") ? path : String(entry.attributes.log ?? path);
      const channel = path.startsWith("log://") ? undefined : Number(entry.attributes.channel);
      const watch = await client.watch({ run, path: log, ...(channel ? { channel } : {}), after }, (chunk) => {
        (chunk.channel === 2 ? process.stderr : process.stdout).write(chunk.data);
      });
      const ended = await watch.ended;
      const statuses = [...ended.values()].map((e) => e.status);
      return statuses.every((s) => s === ENTRY.done) ? 0 : 1;
    });
  },
};

export const CANCEL: Command = {
  help: usage(
    "spool cancel RUN PATH [--reason TEXT]",
    "Cancels a running producer (PATH is its log path); its runner kills the process.",
    "  --reason TEXT       why (kept in the channels' attributes)\n",
  ),
  run: async (argv) => {
    const { values, positionals } = parse(argv, { reason: { type: "string" } });
    if (values.help) return showHelp(CANCEL.help);
    const [run, path] = positionals;
    if (!run || !path) throw new Error("spool cancel needs RUN and the producer's log PATH");
    return withClient(values, async (client) => {
      const result = await client.call("stream/cancel", { run, path, ...(values.reason ? { reason: values.reason as string } : {}) });
      const colours = palette();
      process.stdout.write(result.changed ? `${colours.yellow("cancelled")} ${path}\n` : `${path} had already finished (status ${result.status})\n`);
      return 0;
    });
  },
};
