import { parseArgs } from "node:util";
import { startServer } from "../server.js";
import { usageError } from "./errors.js";

export const SERVE_HELP = `Usage: spool serve [options]

Starts the Spool server: JSON-RPC over WebSocket, its state in the home's SQLite
database (or in PostgreSQL with --database).

Options (each setting: the flag, else the environment variable, else the
config.json key, else the default):
  --home DIR        Spool home (database, token, config.json)   [$SPOOL_HOME, ~/.spool]
  --host HOST       address to bind                    [$SPOOL_HOST, "host", 127.0.0.1]
  --port PORT       port to listen on; 0 picks a free one    [$SPOOL_PORT, "port", 7420]
  --database URL    keep the state in PostgreSQL (postgres://user@host:port/db)
                    instead of $SPOOL_HOME/spool.db  [$SPOOL_DATABASE_URL, "database"]
  --plugin SPEC     load an external plugin: a path (./x.ts, relative to the current
                    directory) or a package name; repeatable, added to "plugins"
  --allow-origin O  allow a browser Origin; repeatable
                                       [$SPOOL_ALLOWED_ORIGINS, "allowedOrigins", none]
  --no-local-runner do not embed the local runner "local"
                                       [$SPOOL_LOCAL_RUNNER=off, "localRunner": false]
  -h, --help        show this help

$SPOOL_HOME/config.json holds these and the other settings (README "Settings");
relative "plugins" paths there are relative to its own directory. A wrong value
stops the server with the file and the key, e.g.
  ~/.spool/config.json: "port" must be an integer 0-65535, got "abc"

One server per home: a second one on the same home refuses to start and names
the process holding its lock (spool.lock).
`;

export async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      home: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      database: { type: "string" },
      plugin: { type: "string", multiple: true },
      "allow-origin": { type: "string", multiple: true },
      "no-local-runner": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw usageError(`--port must be 0-65535, got "${values.port}"`);
  }
  if (values.database !== undefined && !/^postgres(ql)?:\/\//.test(values.database)) {
    throw usageError(`--database must be a PostgreSQL URL (postgres://user@host:port/db), got "${values.database}"`);
  }
  // Whoever reads our output may go away first (a pipe closed at shutdown): that must not crash the server.
  process.stdout.on("error", () => undefined);
  const server = await startServer({
    home: values.home,
    host: values.host,
    port,
    ...(values.database ? { database: values.database } : {}),
    plugins: values.plugin,
    allowedOrigins: values["allow-origin"],
    ...(values["no-local-runner"] ? { localRunner: false } : {}),
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
    process.stdout.write(`Spool listening on ${server.url}\n` + `  token file: ${server.config.tokenFile}\n` + `  database:   ${server.store.location}\n`);
  });
  process.stdout.write("Spool stopped\n");
  return 0;
}
