/**
 * The layout of src/, as data: each folder (or file) with what it holds and the other folders and files of src/
 * its files may import. test/architecture.test.ts holds every source file to its row; `npm run docs` draws the
 * table in docs/spec/layout.md (§16) from it. A file belongs to the row naming it, else to the row of its nearest folder.
 */
export interface Layer {
  /** Folders and files of src/, relative to it (`cli/commands/serve.ts`, `web/page`). */
  paths: readonly string[];
  /** What it holds, in one line. */
  purpose: string;
  /** The folders and files of src/ its files may import besides the row's own (a folder: any file in it). */
  imports: readonly string[];
  /** Files of those it may not import. */
  except?: readonly string[];
  /** Packages from node_modules it may import: any, or only these. */
  packages: "any" | readonly string[];
  /** Whether it may import Node's built-ins (`node:…`). */
  node: boolean;
  /** Names its files may not use at all, and why (read from the text, comments left out). */
  never?: readonly { name: string; why: string }[];
}

/** The client-facing files every command shares: the settings reader (which server, which token), the logger, the version. */
const SHARED = ["config/config.ts", "config/settings.ts", "logger.ts", "version.ts"] as const;

/** What every backend shares, at the top of src/runners/. */
const RUNNER_SHARED = [
  "runners/backend.ts",
  "runners/control.ts",
  "runners/environment.ts",
  "runners/flags.ts",
  "runners/new-repos.ts",
  "runners/output.ts",
  "runners/proc.ts",
  "runners/shell.ts",
  "runners/streams.ts",
  "runners/supervise.ts",
] as const;

/** What both of the store's engines, its search and its repositories share, at the top of src/store/. */
const STORE_SHARED = ["store/store.ts", "store/schema.ts", "store/errors.ts"] as const;

export const LAYERS: readonly Layer[] = [
  {
    paths: ["protocol"],
    purpose:
      "the wire and nothing else: one descriptor per request and notification, shared shapes, statuses, the error catalogue, roles, runner messages; published as `spool/protocol`",
    imports: [],
    packages: ["zod"],
    node: false,
  },
  {
    paths: ["store"],
    purpose:
      "the database (SQLite or PostgreSQL): one repository per table over either engine, migrations, row → wire views, over the engines' folders and the search; the only place that writes SQL",
    imports: ["protocol", "program.ts"],
    packages: "any",
    node: true,
  },
  {
    paths: [...STORE_SHARED],
    purpose: "what the engines and the repositories share: the Store's shape and what an append is, the tables' rows, the typed errors",
    imports: ["protocol"],
    packages: ["kysely"],
    node: false,
  },
  {
    paths: ["store/sqlite"],
    purpose:
      "the SQLite engine: the driver this Node loads, the store opened in WAL mode, its group commit, the connection's queue and busy retries, the synchronous reads' statements, the checkpoint worker",
    imports: ["protocol", "program.ts", ...STORE_SHARED],
    packages: ["better-sqlite3", "kysely"],
    node: true,
  },
  {
    paths: ["store/postgres"],
    purpose: "the PostgreSQL engine: the store over a pool, its group commit of appends, the cluster bus's SQL",
    imports: ["protocol", ...STORE_SHARED],
    packages: ["kysely", "pg"],
    node: false,
  },
  {
    paths: ["store/search"],
    purpose: "entry/search's store side: the worker pool shared fairly, the worker (reading the SQLite file itself or asking for pages), the line matcher",
    imports: ["program.ts", "store/sqlite/sqlite-driver.ts", "store/sqlite/sqlite-store.ts", ...STORE_SHARED],
    packages: ["better-sqlite3", "re2js"],
    node: true,
  },
  {
    paths: ["rpc"],
    purpose: "JSON-RPC over any transport: connection, scheduler, method registry, `rpc.discover`, read cap, the error mapper",
    imports: ["protocol", "logger.ts"],
    packages: "any",
    node: true,
  },
  {
    paths: ["cluster"],
    purpose: "how servers sharing one PostgreSQL database talk: the bus and its authentication",
    imports: ["store", "logger.ts"],
    packages: "any",
    node: true,
  },
  {
    paths: ["core"],
    purpose:
      "the producer lifecycle (`lifecycle/`: its transition table and the stages that follow it) over what a producer is and who owns it (`producers/`), the runners and where accepted work goes (`runners/`), what a command runs in (`sandbox/`), channels' bytes to their watchers (`streams/`); runs (`runs/`), credentials (`credentials/`), what a proposal's life tells beyond its clients (`activity/`: the audit trail, notifications, deadlines); and the services that own the queries of entries and proposals",
    imports: ["protocol", "rpc", "store", "runners", "cluster", "config/config.ts", "logger.ts"],
    packages: "any",
    node: true,
    never: [{ name: "jsonrpc", why: "the wire's envelope is the RPC layer's: core notifies, or sends what rpc serialized (rpc/stream-data-bytes.ts)" }],
  },
  {
    paths: ["plugins"],
    purpose: "the plugin host and SDK: `definePlugin`, `defineMethod`, hooks, filters, services",
    imports: ["core", "rpc", "store", "config/config.ts", "logger.ts"],
    packages: "any",
    node: true,
  },
  {
    paths: ["features"],
    purpose:
      "one folder per built-in feature: the plugin (`index.ts`) and the handlers it registers, bound to the protocol's descriptors; a feature imports no other feature's files",
    imports: ["protocol", "core", "plugins", "agent", "model", "rpc", "config/config.ts", "version.ts"],
    packages: "any",
    node: true,
    never: [{ name: "repos", why: "the store's shape; they call core's services `runs`, `entries`, `proposals`, `sessions`" }],
  },
  {
    paths: ["model"],
    purpose: "model providers, and the model's view of output (a terminal emulator, failures)",
    imports: ["protocol"],
    packages: "any",
    node: true,
  },
  {
    paths: ["agent"],
    purpose: "the agent loop: driver, tools, the provider registry",
    imports: ["protocol", "core", "model", "rpc", "plugins", "config/config.ts", "logger.ts"],
    packages: "any",
    node: true,
    never: [{ name: "repos", why: "the store's shape; the loop and its tools call core's services `runs`, `entries`, `proposals`, and wait on their events" }],
  },
  {
    paths: ["runners"],
    purpose:
      "where accepted commands run: the backend interface and what every backend shares (controls, supervision, the command's shell script, output streams), over the sandbox",
    imports: ["protocol"],
    packages: "any",
    node: true,
  },
  {
    paths: ["runners/backends.ts"],
    purpose: "the backends' table as `spool runner` reads it: each backend's flags and how they build it, one row from each backend's folder",
    imports: ["protocol", "runners/local", "runners/docker", "runners/ssh", ...RUNNER_SHARED],
    packages: [],
    node: false,
  },
  {
    paths: ["runners/environment.ts"],
    purpose: "the environment a command starts with: the base variables, the passed ones, the names that look like credentials",
    imports: [],
    packages: [],
    node: true,
  },
  {
    paths: ["runners/client"],
    purpose: "the runner client: attaches a backend to a server, takes the commands it is given and streams their output back",
    imports: ["protocol", "rpc", "client", "logger.ts", "version.ts", ...RUNNER_SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["runners/local"],
    purpose:
      "the local backend: processes on this machine, each in a container (cgroup or PID namespace), the records of what it started, terminals; and the embedded runner the server hosts",
    imports: ["protocol", "rpc", "client", "home/registry.ts", "home/views.ts", "logger.ts", "runners/sandbox", "runners/client", ...RUNNER_SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["runners/docker"],
    purpose: "the Docker backend: a fresh container per command or exec in a running one, its seccomp profile, its egress from outside the container",
    imports: ["protocol", "home/registry.ts", "home/views.ts", "program.ts", "runners/sandbox", ...RUNNER_SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["runners/ssh"],
    purpose: "the SSH backend: commands on another machine over one SSH connection, its host keys, bubblewrap there",
    imports: ["protocol", "runners/sandbox", ...RUNNER_SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["runners/sandbox"],
    purpose:
      "the bubblewrap sandbox: what a command sees (the view, /etc), its setup, its network (slirp4netns, or the egress proxy started beside it), the seccomp filter",
    imports: ["protocol", "paths.ts", "program.ts", "runners/environment.ts"],
    packages: "any",
    node: true,
  },
  {
    paths: ["runners/egress"],
    purpose: "the egress proxy, a process of its own: the allowlist's decisions, HTTP and SOCKS5, the ClientHello's name, the forwarder inside a sandbox",
    imports: ["protocol"],
    packages: [],
    node: true,
  },
  {
    paths: ["ops"],
    purpose: "operations: health, Prometheus metrics, OpenTelemetry traces, `spool doctor`'s checks",
    imports: ["protocol", "core", "rpc", "runners", "store", "config/config.ts", "home/lock.ts", "logger.ts", "version.ts"],
    packages: "any",
    node: true,
  },
  {
    paths: ["client"],
    purpose: "`SpoolClient` over any transport (Node or browser WebSocket), published as `spool/client`",
    imports: ["protocol", "rpc", "auth.ts"],
    packages: "any",
    node: true,
  },
  {
    paths: ["web"],
    purpose: "the web view's server side: its HTTP routes, assets and sign-in sessions",
    imports: ["protocol", "ops", "door", "auth.ts", "logger.ts"],
    packages: "any",
    node: true,
  },
  {
    paths: ["web/page"],
    purpose: "the web page, bundled for the browser",
    imports: ["protocol", "client"],
    except: ["client/ws-transport.ts"],
    packages: "any",
    node: false,
  },
  {
    paths: ["door"],
    purpose:
      "the front door `/mcp` and `/acp` share: who comes in, requests under way and tables per principal (with the home's reserve), the answer when full, body deadlines (the web page's sign-in routes read their bodies here too), the node:http ↔ web Request/Response adapter",
    imports: ["protocol"],
    packages: [],
    node: true,
  },
  {
    paths: ["acp"],
    purpose: "editors over ACP (`spool acp`): a client of the server",
    imports: ["protocol", "client", "door", "program.ts", ...SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["mcp/spool"],
    purpose:
      "agents over MCP, the floor both revisions stand on: the tools and resources Spool offers (one table of tools, the resource functions), the Spool side each MCP caller works on (a client of the server), the decision, progress, task ids",
    imports: ["protocol", "client", "door", ...SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["mcp/sessions"],
    purpose:
      "MCP 2025-11-25, one wing: a session's server (initialize, its tasks, resource subscriptions), the bridge that serves it on a transport, the sessions of `/mcp`",
    imports: ["protocol", "client", "door", "mcp/spool", ...SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["mcp/stateless"],
    purpose:
      "MCP 2026-07-28, the other wing: a request's server (no session), the caller's kept Spool connections, approvals as multi round-trip requests, the tasks extension, what a listen follows",
    imports: ["protocol", "client", "door", "mcp/spool", ...SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["mcp/http.ts", "mcp/stdio.ts"],
    purpose: "MCP's entries, above both wings: `/mcp` over HTTP and `spool mcp` over stdio, each picking the wing by revision",
    imports: ["protocol", "client", "door", "mcp/spool", "mcp/sessions", "mcp/stateless", ...SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["cli"],
    purpose:
      "the `spool` command's client commands, clients of the server: the table (`main.ts`), each command's body in `commands/`, and beside them what the commands share",
    imports: ["protocol", "client", "home/registry.ts", ...SHARED],
    packages: "any",
    node: true,
  },
  {
    paths: ["cli/main.ts", "cli/commands/serve.ts", "cli/commands/runner.ts", "cli/commands/acp.ts", "cli/commands/mcp.ts", "cli/commands/doctor.ts"],
    purpose: "the commands that start what they host: the server, a runner, the ACP and MCP bridges, the doctor",
    imports: [
      "cli",
      "protocol",
      "client",
      "home/registry.ts",
      "home/in-project.ts",
      "home/views.ts",
      ...SHARED,
      "server/server.ts",
      "runners",
      "acp",
      "mcp/stdio.ts",
      "ops",
    ],
    packages: "any",
    node: true,
  },
  {
    paths: ["docs"],
    purpose: "the generated parts of docs/spec/, PLUGINS.md and README.md (`npm run docs`), and this layout",
    imports: ["protocol", "rpc", "plugins", "core/hooks.ts", "config/config.ts", "cli/exit-codes.ts"],
    packages: "any",
    node: true,
  },
  {
    paths: ["server"],
    purpose:
      "the server assembled, in stages: store and services (core, RPC, plugins, features), who is asking at each door, the HTTP and WebSocket listener, transports (WebSocket, Unix socket), a young-generation collection per run of binary frames received",
    imports: [
      "protocol",
      "store",
      "rpc",
      "cluster",
      "core",
      "plugins",
      "features",
      "runners",
      "ops",
      "client",
      "web",
      "mcp/http.ts",
      "acp/http.ts",
      "door",
      "auth.ts",
      "config/config.ts",
      "home",
      "logger.ts",
      "version.ts",
    ],
    packages: "any",
    node: true,
  },
  {
    paths: ["plugin.ts"],
    purpose: "the plugin API as published (`spool/plugin`)",
    imports: ["plugins", "core", "rpc", "agent", "model"],
    packages: "any",
    node: true,
  },
  {
    paths: ["config"],
    purpose: "config.json and the environment, read and checked: the settings' schema, the file's reading and its problems named, the merge",
    imports: ["protocol", "model"],
    packages: "any",
    node: true,
  },
  {
    paths: ["home"],
    purpose:
      "the Spool home: one server per home (its lock), the home its owner's alone, every Spool home on the machine (the registry sandboxes check), never one inside a project or a running command's view",
    imports: ["paths.ts"],
    packages: [],
    node: true,
  },
  {
    paths: ["auth.ts", "logger.ts", "paths.ts", "program.ts", "version.ts"],
    purpose:
      "leaves every layer may share: the token, the logger, where a path really is (the sandbox's view and the home's check), a module run as a program of its own, the version",
    imports: ["protocol"],
    packages: "any",
    node: true,
  },
];
