import { existsSync, mkdirSync, rmdirSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { SpoolClient } from "../../client/spool-client.js";
import { checkOutsideProjects } from "../../home/in-project.js";
import { recordStatePaths } from "../../home/registry.js";
import { checkOutsideViews } from "../../home/views.js";
import { createLogger } from "../../logger.js";
import { BACKEND_NAMES, backendNamesWords } from "../../protocol/backends.js";
import { LabelKey, LabelValue } from "../../protocol/pools.js";
import { escapeControl } from "../../protocol/proposal-facts.js";
import { BackendName, MAX_RUNNER_CAPACITY } from "../../protocol/runner.js";
import type { Backend } from "../../runners/backend.js";
import { backendFlags, backendRow } from "../../runners/backends.js";
import { type CommandEvent, firstAnswering, RunnerClient } from "../../runners/client/runner-client.js";
import { PASS_ENV_ENTRY } from "../../runners/environment.js";
import { type FlagValues, need, positiveInt, readFlagFile } from "../../runners/flags.js";
import { letGoOfInherited } from "../../runners/local/descriptors.js";
import { type ProcessRecorder, ProcessRegistry, reapLeftovers } from "../../runners/local/orphans.js";
import { SandboxMode, sandboxModes } from "../../runners/sandbox/sandbox.js";
import { type Command, defineCommand, parseSpec, positionals, showHelp } from "../command-spec.js";
import { serverTarget } from "../common.js";
import { CliError, EXIT, explain } from "../errors.js";

export const RUNNER_SPEC = defineCommand({
  name: "runner",
  usage: `spool runner --project NAME --name NAME --backend ${BACKEND_NAMES.join("|")} [--server URL] [--token-file PATH] [options]`,
  about: `Attaches to a Spool server as a runner and executes the accepted commands it is
given, streaming their output back. Reconnects when the connection drops;
when its credential is revoked or expires it stops and exits 3, saying so.

The backend is checked first (ssh: the host key, the login and a trivial
command; docker: the engine, and the image, pulled when missing, or the running
container); when it fails the runner says why and exits 1 without attaching.
Each command prints a line when it starts and one when it ends (time, run,
log path, the command with control characters escaped; then how it ended).`,
  width: 22,
  options: {
    server: {
      type: "string",
      arg: "URL[,URL]",
      help: `the server, e.g. ws://127.0.0.1:7420/        [$SPOOL_SERVER, else
as every command: $SPOOL_HOST/$SPOOL_PORT, config.json, 7420]
(servers sharing one database: tried in turn,
also when the runner reconnects)`,
    },
    "token-file": {
      type: "string",
      arg: "PATH",
      help: `file holding its credential: best a runner's (spool token
create NAME --role runner), which can run what it is
given and nothing else   [$SPOOL_TOKEN_FILE, $SPOOL_HOME/token]`,
    },
    project: { type: "string", arg: "NAME", help: "project to serve" },
    name: { type: "string", arg: "NAME", help: "runner name, unique in the project" },
    backend: { type: "string", arg: "KIND", help: backendNamesWords() },
    default: {
      type: "boolean",
      help: `also take accepted proposals that name no runner (refused
when another runner is the project's default)`,
    },
    "replace-default": { type: "boolean", help: "with --default: take the default from the runner that has it" },
    root: {
      type: "string",
      arg: "DIR",
      help: `where the project root is on the backend (default: the
server's path for local and docker --image, the login
directory for ssh, the container's for docker --container)`,
    },
    label: {
      type: "string",
      multiple: true,
      arg: "K=V",
      help: `a label (pools select runners by them: a proposal's
{labels: {K: V}}, config.json "pools"); repeatable`,
    },
    capacity: {
      type: "string",
      arg: "N",
      help: `commands it runs at once; more accepted for it (or its
pools) wait in the queue until one ends      [no limit]`,
    },
    "drain-on-term": {
      type: "boolean",
      help: `on SIGTERM, drain: take nothing new, let the running
commands end, then exit (a pod being stopped); a second
signal stops them at once. Without it SIGTERM stops
them at once, as SIGINT does`,
    },
    window: { type: "string", arg: "N", help: "unacknowledged chunks per channel              [8]" },
    "kill-grace": { type: "string", arg: "MS", help: "TERM → KILL grace when cancelling             [2000]" },
    sandbox: {
      type: "string",
      arg: "MODE",
      help: `the sandbox (read-only for env commands and ask runs,
workspace-write for sh): auto (use one when the backend
has it), off (none: only commands proposed full run
here), require (do not start without one)     [auto]`,
    },
    "pass-env": {
      type: "string",
      multiple: true,
      arg: "NAME",
      help: `a variable of this runner's environment that commands
also get (a name, or a pattern with *); repeatable.
Commands start with PATH, HOME, LANG, TERM only.`,
    },
    "state-dir": {
      type: "string",
      arg: "DIR",
      help: `where the local backend records the process groups it
starts; at start-up the runner kills those a previous
runner left there when it died without stopping them
                      [$SPOOL_HOME/runners/NAME]`,
    },
    // Each backend's own, under its name (src/runners/backends.ts).
    ...backendFlags(),
  },
});

/** Control and invisible characters as escapes, so a command prints on one honest line: the formatter every client uses. */
export const escapeControls = escapeControl;

const MAX_COMMAND_CHARS = 300;

/** The runner's line for a command starting or ending: `TIME RUN PATH $ COMMAND`, then `TIME RUN PATH → OUTCOME (S s)`. */
export function commandLine(event: CommandEvent, now = new Date()): string {
  const time = now.toISOString().replace(/\.\d+Z$/, "Z");
  const head = `${time} ${escapeControls(event.run)} ${escapeControls(event.path)}`;
  if (event.kind === "ended") return `${head} → ${escapeControls(event.outcome)} (${(event.durationMs / 1000).toFixed(1)} s)`;
  const command = escapeControls(event.command);
  const shown = command.length > MAX_COMMAND_CHARS ? `${command.slice(0, MAX_COMMAND_CHARS)}… (${command.length - MAX_COMMAND_CHARS} more)` : command;
  return `${head} $ ${shown}`;
}

/** The default --state-dir: $SPOOL_HOME (or ~/.spool)/runners/<name>, the name made safe as one path segment. */
export function runnerStateDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const segment = name.replace(/[^\w.-]/g, "_").replace(/^\.+$/, "_");
  return join(env.SPOOL_HOME ?? join(homedir(), ".spool"), "runners", segment);
}

/**
 * The backend the flags ask for, built by its row of src/runners/backends.ts. Docker's and SSH's are imported only for
 * their own runners: dockerode (with gRPC and protobuf) and ssh2 are ~200 files that a local runner's start read and
 * compiled for nothing (0.5 → 0.3 s of CPU).
 */
export async function backendFromFlags(values: FlagValues, extra: { processes?: ProcessRecorder } = {}): Promise<Backend> {
  const kind = BackendName.safeParse(need("backend", values.backend as string | undefined));
  if (!kind.success) throw new Error(`--backend must be ${backendNamesWords()}, got "${String(values.backend)}"`);
  return backendRow(kind.data).build(values, {
    killGraceMs: positiveInt("kill-grace", values["kill-grace"] as string | undefined, 2000),
    sandbox: sandboxMode(values.sandbox) === "off" ? "off" : "auto",
    ...(values.root ? { root: values.root as string } : {}),
    ...(extra.processes ? { processes: extra.processes } : {}),
  });
}

/** `dir`, created (0700) when it is not there. */
function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function sandboxMode(raw: unknown): SandboxMode {
  const mode = SandboxMode.safeParse(raw ?? "auto");
  if (!mode.success) throw new Error(`--sandbox must be auto, off or require, got "${String(raw)}"`);
  return mode.data;
}

export async function runner(argv: string[]): Promise<number> {
  const { values, positionals: rest } = parseSpec(RUNNER_SPEC, argv);
  if (values.help) return showHelp(RUNNER_SPEC);
  positionals("runner", rest, []);
  // Before anything is opened: what this process inherited beyond stdio would pass to every command (runners/local/descriptors.ts).
  letGoOfInherited();
  // The same defaults as every other command: the local server of $SPOOL_HOME.
  const { SPOOL_SERVER: _list, ...settings } = process.env;
  const target = await serverTarget(values["token-file"] ? { "token-file": values["token-file"] } : {}, settings);
  const explicit = values.server ?? (process.env.SPOOL_SERVER || undefined);
  // The home's server is looked for at each connection: its Unix socket once it is there (a restarted server's too).
  const homeUrl = async () => (await serverTarget(values["token-file"] ? { "token-file": values["token-file"] } : {}, settings)).url;
  const server = explicit ?? target.url;
  const tokenFile = target.tokenFile;
  const token = readFlagFile("token-file", tokenFile).toString("utf8").trim();
  const labels = labelsFromFlags(values.label ?? []);
  const log = createLogger();
  const capacity = values.capacity === undefined ? undefined : positiveInt("capacity", values.capacity, 1);
  if (capacity !== undefined && capacity > MAX_RUNNER_CAPACITY)
    throw new Error(`--capacity must be at most ${MAX_RUNNER_CAPACITY} (commands at once), got "${values.capacity}"`);
  const name = need("name", values.name);
  const project = need("project", values.project);
  const stateDir = claimStateDir(values["state-dir"] ?? runnerStateDir(name));
  const processes = new ProcessRegistry(stateDir, log);
  const backend = await backendFromFlags(values, { processes });
  const passEnv = passEnvFromFlags(values["pass-env"] ?? []);
  const { sandbox, container } = await readyBackend(backend, sandboxMode(values.sandbox));
  // What a previous runner recording here left running when it died unannounced: nobody can resume it, so it goes.
  await reapLeftovers(stateDir, log, { killGraceMs: positiveInt("kill-grace", values["kill-grace"], 2000) });
  // What the backend's own flags name that is a credential (the SSH runner's key, wherever it is kept) is one too.
  const backendSecrets = backendRow(backend.kind).secrets?.(values) ?? [];
  // Absolute: each sandbox checks them where it runs (an SSH runner's on the host, from the command's directory).
  const runnerState = [ensureDir(process.env.SPOOL_HOME ?? join(homedir(), ".spool")), tokenFile, ensureDir(stateDir), ...backendSecrets].map((path) =>
    resolve(path),
  );
  // And checked by every other sandbox on this machine (the embedded runner's, another runner's): home/registry.ts.
  recordStatePaths(runnerState);
  const runnerClient = new RunnerClient({
    connect: connector(explicit, homeUrl, token),
    project,
    name,
    backend,
    default: values.default ?? false,
    replaceDefault: values["replace-default"] ?? false,
    labels,
    ...(capacity !== undefined ? { capacity } : {}),
    ...(values.root ? { root: values.root } : {}),
    window: positiveInt("window", values.window, 8),
    passEnv,
    // This runner's own state (and its SSH key) is as far from a sandboxed command as the server's: a command whose
    // view would hold it is refused (runners/sandbox/view.ts).
    secrets: runnerState,
    log,
    onCommand: (event) => process.stdout.write(`${commandLine(event)}\n`),
  });
  try {
    await runnerClient.start();
  } catch (error) {
    await backend.close(); // an open SSH connection would keep this process alive
    const { message, code } = explain(error, { url: server, tokenFile });
    throw new CliError(message, code);
  }
  // Where the project root's commands run, as runner/attach said it: every proposal's card says so too.
  const root = await runnerClient.root();
  const serverRoot = runnerClient.serverRoot ?? "unknown";
  const where = `Project root: ${root ? `${root} on this runner (the server's is ${serverRoot})` : `${serverRoot}, the server's path`}; a command's cwd is taken under it`;
  const banner = attachedBanner(`Runner ${values.name} attached to ${server} (project ${project}): ${backend.describe()}\n${where}`, sandbox, container);
  const refused = await runUntilStopped(runnerClient, values["drain-on-term"] ?? false, banner);
  if (refused !== null) {
    throw new CliError(`runner ${name} stopped: ${refused}; start it with a new credential (spool token create NAME --role runner)`, EXIT.connection);
  }
  return 0;
}

/**
 * The runner's state directory, made (0700) and recorded as a home's state, once it is known to lie outside every
 * project and every running command's view: the records there name process groups this runner kills at its start,
 * so nothing a command can write may be one. A directory this start made and then refused goes again.
 */
function claimStateDir(stateDir: string): string {
  // Before anything is read from it.
  checkOutsideProjects(
    resolve(stateDir),
    "the runner's state directory",
    "it could write records there that name process groups this runner kills when it starts. Choose a --state-dir outside every project (the default is $SPOOL_HOME/runners/NAME)",
  );
  // Made and recorded before the views are read, as a server's home (home/views.ts): of this and a command started
  // together, one sees the other.
  const made = !existsSync(stateDir);
  recordStatePaths([resolve(ensureDir(stateDir))]);
  try {
    checkOutsideViews(
      resolve(stateDir),
      "the runner's state directory",
      "it could write records there that name process groups this runner kills when it starts",
    );
  } catch (error) {
    // Empty: nothing was written in it yet.
    if (made) {
      try {
        rmdirSync(stateDir);
      } catch {
        // not empty (something wrote there meanwhile): left, and the refusal said why
      }
    }
    throw error;
  }
  return stateDir;
}

/** `--pass-env` flags, each a variable name or a pattern with `*`. */
function passEnvFromFlags(flags: string[]): string[] {
  for (const entry of flags) {
    if (!PASS_ENV_ENTRY.test(entry)) throw new Error(`--pass-env must be a variable name or a pattern with *, got "${entry}"`);
  }
  return flags;
}

/**
 * How the runner connects, at its start and at each reconnect: to the first of `--server`'s comma-separated
 * addresses that answers, or, without one, to the home's server wherever it is now (`homeUrl`).
 */
function connector(explicit: string | undefined, homeUrl: () => Promise<string>, token: string): () => Promise<SpoolClient> {
  if (explicit === undefined) return async () => SpoolClient.connect(await homeUrl(), { token });
  const urls = explicit
    .split(",")
    .map((url) => url.trim())
    .filter(Boolean);
  return firstAnswering(urls, (url) => SpoolClient.connect(url, { token }));
}

/** `--label key=value` flags as labels, each checked in the flag's words before anything attaches. */
function labelsFromFlags(flags: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    flags.map((l) => {
      const at = l.indexOf("=");
      if (at < 1) throw new Error(`--label must look like key=value, got "${l}"`);
      const [key, value] = [l.slice(0, at), l.slice(at + 1)];
      // In the flag's words before anything attaches (the server would name a record's key only as "Invalid key").
      const wrong = LabelKey.safeParse(key).error ?? LabelValue.safeParse(value).error;
      if (wrong) throw new Error(`--label "${escapeControl(l)}": ${wrong.issues[0]?.message ?? "not a label"}`);
      return [key, value];
    }),
  );
}

type BackendSandbox = Awaited<ReturnType<Backend["sandbox"]>>;
type BackendContainer = Awaited<ReturnType<NonNullable<Backend["container"]>>>;

/**
 * The backend checked before anything is attached, with its sandbox and command container; a backend that fails its
 * check, or has no read-only sandbox under `--sandbox require`, is closed and the runner stops saying why.
 */
async function readyBackend(backend: Backend, mode: SandboxMode): Promise<{ sandbox: BackendSandbox; container: BackendContainer | undefined }> {
  // Nothing is attached before the backend is known to work: a runner that cannot run anything should say why and stop.
  try {
    await backend.check((line) => process.stdout.write(`${line}\n`));
  } catch (error) {
    await backend.close();
    throw error;
  }
  const sandbox = await backend.sandbox();
  const container = await backend.container?.();
  if (mode === "require" && !sandbox.readOnly) {
    await backend.close();
    throw new Error(`--sandbox require: this backend has no read-only sandbox (${sandbox.detail})`);
  }
  return { sandbox, container };
}

/** What the runner prints once attached: `attached`, then its sandbox, modes, view and command container. */
function attachedBanner(attached: string, sandbox: BackendSandbox, container: BackendContainer | undefined): string {
  const readOnly = sandbox.readOnly
    ? `Sandbox: ${sandbox.detail}`
    : `No read-only sandbox: ${sandbox.detail}. Read-only work (env commands, ask runs) is refused on this runner.`;
  const modes = `Sandbox modes: ${sandboxModes(sandbox).join(", ")}`;
  // What its sandboxed commands see besides the project and the configured paths (every proposal shows it too).
  const view = sandbox.view
    ? `\nSandbox view: ${[...(sandbox.view.image ? [`the image ${sandbox.view.image}`] : []), ...sandbox.view.system].join(", ") || "nothing of the system"} read-only; ${sandbox.view.home ? `a private home at ${sandbox.view.home}` : "the image's home"}; toolchains ${sandbox.view.toolchains.join(", ") || "none"}${sandbox.view.project === false ? "; the project not mounted" : ""}`
    : "";
  const contained = container ? `\nCommand container: ${container.kind}: ${container.detail}` : "";
  return `${attached}\n${readOnly}\n${modes}${view}${contained}\n`;
}

/**
 * Serves until SIGINT or SIGTERM (with `drainOnTerm`, a TERM drains first; a second signal stops at once) or until the
 * server refuses the credential: resolves with the refusal's reason, or null when stopped by a signal. `banner` is
 * printed once the signals are handled.
 */
function runUntilStopped(runnerClient: RunnerClient, drainOnTerm: boolean, banner: string): Promise<string | null> {
  return new Promise<string | null>((resolve) => {
    let stopping = false;
    let draining = false;
    const stopNow = () => void runnerClient.stop().then(() => resolve(null));
    const shutdown = (signal: string) => {
      if (stopping) {
        // A second signal while draining: what runs is stopped now (reported "runner stopped"), as without the drain.
        if (!draining) return;
        draining = false;
        process.stdout.write(`Received ${signal} while draining, stopping the runner and its ${runnerClient.running} command(s)\n`);
        return stopNow();
      }
      stopping = true;
      if (signal === "SIGTERM" && drainOnTerm) {
        draining = true;
        process.stdout.write(`Received SIGTERM, draining: taking nothing new, ${runnerClient.running} command(s) running\n`);
        void runnerClient.drain().then(
          () => {
            if (!draining) return;
            draining = false;
            process.stdout.write("Drained: nothing runs, stopping the runner\n");
            stopNow();
          },
          (error: unknown) => {
            if (!draining) return;
            draining = false;
            process.stdout.write(`Could not drain (${error instanceof Error ? error.message : String(error)}), stopping the runner\n`);
            stopNow();
          },
        );
        return;
      }
      process.stdout.write(`Received ${signal}, stopping the runner\n`);
      stopNow();
    };
    // A revoked or expired credential will never attach again: the runner stops and says so instead of retrying.
    void runnerClient.refused.then((why) => {
      // A drain waits no longer: no reconnect can succeed, and nothing it runs can report its end.
      if (stopping && !draining) return;
      stopping = true;
      draining = false;
      void runnerClient.stop("runner stopped: its credential was refused").then(() => resolve(why));
    });
    process.on("SIGINT", () => shutdown("SIGINT"));
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    process.stdout.write(banner);
  });
}

export const RUNNER: Command = { spec: RUNNER_SPEC, run: (argv) => runner(argv) };
