import { appendFileSync, chmodSync } from "node:fs";
import { resolve } from "node:path";
import { createLogger, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel, parseLogFormat, parseLogLevel } from "../../logger.js";
import { deadlineInForce } from "../../protocol/deadline-words.js";
import { letGoOfInherited } from "../../runners/local/descriptors.js";
import { type Command, defineCommand, parseSpec, positionals, showHelp } from "../command-spec.js";
import { portAndDatabase } from "../common.js";
import { usageError } from "../errors.js";

export const SERVE_SPEC = defineCommand({
  name: "serve",
  usage: "spool serve [options]",
  about: `Starts the Spool server: JSON-RPC over WebSocket, its state in the home's SQLite
database (or in PostgreSQL with --database).`,
  optionsTitle: `Options (each setting: the flag, else the environment variable, else the
config.json key, else the default):`,
  width: 18,
  options: {
    home: { type: "string", arg: "DIR", help: "Spool home (database, token, config.json)   [$SPOOL_HOME, ~/.spool]" },
    host: { type: "string", arg: "HOST", help: 'address to bind                    [$SPOOL_HOST, "host", 127.0.0.1]' },
    port: { type: "string", arg: "PORT", help: 'port to listen on; 0 picks a free one    [$SPOOL_PORT, "port", 7420]' },
    database: {
      type: "string",
      arg: "URL",
      help: `keep the state in PostgreSQL (postgres://user@host:port/db)
instead of $SPOOL_HOME/spool.db  [$SPOOL_DATABASE_URL, "database"]`,
    },
    plugin: {
      type: "string",
      multiple: true,
      arg: "SPEC",
      help: `load an external plugin: a path (./x.ts, relative to the current
directory) or a package name; repeatable, added to "plugins"`,
    },
    "allow-origin": {
      type: "string",
      multiple: true,
      arg: "O",
      help: `allow a browser Origin; repeatable
                   [$SPOOL_ALLOWED_ORIGINS, "allowedOrigins", none]`,
    },
    "no-local-runner": {
      type: "boolean",
      help: `do not embed the local runner "local"
                   [$SPOOL_LOCAL_RUNNER=off, "localRunner": false]`,
    },
    "demo-model": {
      type: "boolean",
      help: `offer the built-in demo model as the alias "demo": no network,
no key; it proposes the command the prompt names between
backticks (else ls) and answers from its output
                   [$SPOOL_DEMO_MODEL=on, "demoModel": true]`,
    },
    "log-level": {
      type: "string",
      arg: "LEVEL",
      help: `${LOG_LEVELS.join(", ")}  [$SPOOL_LOG, default: warn on
the terminal, info with --log-file]`,
    },
    "log-file": { type: "string", arg: "FILE", help: "append the log to FILE instead of stderr (made 0600)" },
    "log-format": {
      type: "string",
      arg: "F",
      help: `${LOG_FORMATS.join(" or ")}: json writes one object a line (time, level,
message, and principal, project, run, path where they
apply)                         [$SPOOL_LOG_FORMAT, text]`,
    },
  },
  epilogue: `By default the server prints its address once and then only warnings and
errors, so it can share a terminal with \`spool act\`.

$SPOOL_HOME/config.json holds these and the other settings (docs/cli.md "Settings");
relative "plugins" paths there are relative to its own directory. A wrong value
stops the server with the file and the key, e.g.
  ~/.spool/config.json: "port" must be an integer 0-65535, got "abc"

One server per home: a second one on the same home refuses to start and names
the process holding its lock (spool.lock).`,
});

export async function serve(argv: string[]): Promise<number> {
  const { values, positionals: rest } = parseSpec(SERVE_SPEC, argv);
  if (values.help) return showHelp(SERVE_SPEC);
  positionals("serve", rest, []);
  // Before anything is opened: what this process inherited beyond stdio would pass to every command (runners/local/descriptors.ts).
  const inherited = letGoOfInherited();
  const { port } = portAndDatabase(values);
  let level: LogLevel | undefined;
  let format: LogFormat = "text";
  try {
    if (values["log-format"] !== undefined) format = parseLogFormat(values["log-format"], "--log-format");
    else if (process.env.SPOOL_LOG_FORMAT) format = parseLogFormat(process.env.SPOOL_LOG_FORMAT, "SPOOL_LOG_FORMAT");
    if (values["log-level"] !== undefined) level = parseLogLevel(values["log-level"], "--log-level");
    else if (process.env.SPOOL_LOG) level = parseLogLevel(process.env.SPOOL_LOG, "SPOOL_LOG");
  } catch (error) {
    throw usageError((error as Error).message);
  }
  const logFile = values["log-file"] === undefined ? undefined : resolve(values["log-file"]);
  if (logFile !== undefined) {
    try {
      // The log holds command text: the owner's alone, also when it was there before (0644 from an older Spool).
      appendFileSync(logFile, "", { mode: 0o600 });
      chmodSync(logFile, 0o600);
    } catch (error) {
      throw usageError(`--log-file ${logFile}: cannot write to it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }
  // Quiet on the terminal a person also types into; everything worth keeping in a file.
  const logger = createLogger(level ?? (logFile ? "info" : "warn"), { ...(logFile ? { file: logFile } : {}), format });
  if (inherited.length > 0) logger.info(`closed the descriptors this process inherited beyond stdio, so no command gets them: ${inherited.join(", ")}`);
  // Whoever reads our output may go away first (a pipe closed at shutdown): that must not crash the server.
  process.stdout.on("error", () => undefined);
  // Imported here, not at the top: a native module built for another Node fails this import, and the error then
  // reaches main's explain (errors.ts) as any of this command's does.
  const { startServer } = await import("../../server/server.js");
  const server = await startServer({
    home: values.home,
    host: values.host,
    port,
    ...(values.database ? { database: values.database } : {}),
    plugins: values.plugin,
    allowedOrigins: values["allow-origin"],
    ...(values["no-local-runner"] ? { localRunner: false } : {}),
    ...(values["demo-model"] ? { demoModel: true } : {}),
    logger,
  });
  await new Promise<void>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      // Stay subscribed: a repeated signal during shutdown must not fall back to the default (instant death).
      if (stopping) return;
      stopping = true;
      process.stdout.write(`Received ${signal}, shutting down\n`);
      void server.stop().then(resolve);
    };
    process.on("SIGINT", () => shutdown("SIGINT"));
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    // Announce only once the handlers are installed: a client may signal us as soon as it reads this.
    const migrated = server.migrations.length > 0 ? ` (${server.migrations.length} migrations applied)` : "";
    const models = server.config.agent.models.map((m) => (m.provider === "demo" ? `${m.alias} (built-in demo)` : m.alias));
    process.stdout.write(
      `Spool listening on ${server.url}\n` +
        `  socket:     ${server.localUrl ? `${server.config.socketPath} (local clients' default)` : "none (the home's path is too long for a Unix socket)"}\n` +
        `  token file: ${server.config.tokenFile}\n` +
        `  database:   ${server.store.location}${migrated}\n` +
        `  models:     ${models.length ? models.join(", ") : "none (set SPOOL_MODEL_<ALIAS>=openai/<model-id>, or --demo-model)"}\n` +
        `  deadline:   ${deadlineInForce(server.config.decisionTimeoutMs)}\n` +
        (logFile ? `  log:        ${logFile}\n` : ""),
    );
  });
  process.stdout.write("Spool stopped\n");
  return 0;
}

export const SERVE: Command = { spec: SERVE_SPEC, run: serve };
