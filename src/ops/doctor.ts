import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { SpoolConfig } from "../config/config.js";
import { ownerAlive } from "../home/lock.js";
import { BACKEND_NAMES } from "../protocol/backends.js";
import { deadlineInForce } from "../protocol/deadline-words.js";
import { type ReceiverState, receiverStateWords } from "../protocol/receiver-state.js";
import { probeBwrap } from "../runners/sandbox/sandbox.js";
import type { Check } from "./check.js";
import { nativeChecks, onPath } from "./native.js";
import { nodeCheck } from "./node-lines.js";
import { readServerFacts, type ServerFacts } from "./server-facts.js";

export type { Check, CheckStatus } from "./check.js";

export interface DoctorOptions {
  config: SpoolConfig;
  /** The environment the checks look at (PATH for programs, DOCKER_HOST, API keys). */
  env: NodeJS.ProcessEnv;
  /** Ask each configured model's server for its model list (otherwise none is called). */
  models?: boolean;
  /**
   * The running server's receivers of notifications (`notify/list`, asked with the home's token), or why they could
   * not be read; called only when a server answers for the home.
   */
  receivers?: (config: SpoolConfig) => Promise<ReceiverView[] | string>;
}

/** A receiver as `notify/list` shows it, as far as its checks read it. */
export type ReceiverView = ReceiverState & { name: string; url: string };

/** Every check, in the order people read them; none changes anything. */
export async function runChecks(options: DoctorOptions): Promise<Check[]> {
  const { env } = options;
  // The server running for this home says how it was started (its --port, --database, --demo-model): that is what is
  // described, rather than what the configuration alone would start.
  const running = runningServer(options.config.home);
  const config = running ? asStarted(options.config, running.facts) : options.config;
  const checks: Check[] = [nodeCheck(), ...(await nativeChecks()), homeCheck(config), tokenCheck(config), databaseCheck(config), transportCheck(config)];
  checks.push(...(await sandboxChecks(config, env)));
  checks.push(await dockerCheck(env));
  checks.push(sshCheck());
  checks.push(...(await modelChecks(config, options.models === true)));
  checks.push({ name: "deadline", status: "info", detail: deadlineInForce(config.decisionTimeoutMs), data: { decisionTimeoutMs: config.decisionTimeoutMs } });
  const server = await serverCheck(config, running);
  if (server.status === "ok" && options.receivers) checks.push(...receiverChecks(await options.receivers(config)));
  checks.push(server);
  return checks;
}

interface Running {
  owner: { pid: number; startTicks: number | null; startedAt: string };
  facts: ServerFacts | null;
}

/** The live server holding the home's lock, and what it wrote about itself; null when none runs. */
function runningServer(home: string): (Running & { facts: ServerFacts }) | null;
function runningServer(home: string, anyFacts: true): Running | null;
function runningServer(home: string, anyFacts = false): Running | null {
  let owner: Running["owner"] | null = null;
  try {
    owner = JSON.parse(readFileSync(join(home, "spool.lock"), "utf8"));
  } catch {
    return null; // no lock: no server
  }
  if (!owner || !ownerAlive({ ...owner, hostname: "", nonce: "" })) return null;
  const facts = readServerFacts(home, owner.pid);
  return facts || anyFacts ? { owner, facts } : null;
}

/** The configuration as the running server has it: its address, its database, its models (API keys from here). */
function asStarted(config: SpoolConfig, facts: ServerFacts): SpoolConfig {
  const here = new Map(config.agent.models.map((m) => [m.alias, m]));
  return {
    ...config,
    host: facts.host,
    port: facts.port,
    decisionTimeoutMs: facts.decisionTimeoutMs ?? config.decisionTimeoutMs,
    ...(facts.database.kind === "postgres" ? { databaseUrl: facts.database.url } : { databaseUrl: undefined, dbFile: facts.database.path }),
    agent: {
      ...config.agent,
      models: facts.models.map((m) => {
        const key = here.get(m.alias)?.apiKey;
        // The server has a key this environment lacks: not called with none, not reported missing.
        return {
          alias: m.alias,
          provider: m.provider,
          model: m.model,
          baseUrl: m.baseUrl,
          ...(key ? { apiKey: key } : m.apiKey ? { apiKey: KEY_IN_SERVER } : {}),
        };
      }),
    },
  } as SpoolConfig;
}

/** Stands for an API key the running server has and this environment does not. */
const KEY_IN_SERVER = "\u0000in-server";

const mode = (path: string) => statSync(path).mode & 0o777;
const octal = (bits: number) => `0${bits.toString(8)}`;

function homeCheck(config: SpoolConfig): Check {
  if (!existsSync(config.home))
    return {
      name: "home",
      status: "info",
      detail: `${config.home} does not exist yet: the first \`spool serve\` creates it (0700)`,
      data: { path: config.home },
    };
  const bits = mode(config.home);
  const data = { path: config.home, mode: octal(bits) };
  if ((bits & 0o077) !== 0)
    return {
      name: "home",
      status: "fail",
      detail: `${config.home} is mode ${octal(bits)}: other users may read or change the token, the database and the lock`,
      fix: `chmod 700 ${config.home}`,
      data,
    };
  return { name: "home", status: "ok", detail: `${config.home} (mode ${octal(bits)})`, data };
}

function tokenCheck(config: SpoolConfig): Check {
  const file = config.tokenFile;
  if (!existsSync(file))
    return { name: "token", status: "info", detail: `${file} does not exist yet: the first \`spool serve\` creates it (0600)`, data: { path: file } };
  const bits = mode(file);
  const data = { path: file, mode: octal(bits) };
  if ((bits & 0o077) !== 0)
    return { name: "token", status: "fail", detail: `${file} is mode ${octal(bits)}: other users may read the token`, fix: `chmod 600 ${file}`, data };
  const length = readFileSync(file, "utf8").trim().length;
  if (length < 16) return { name: "token", status: "fail", detail: `${file} holds no usable token`, fix: `rm ${file} (the next start writes a new one)`, data };
  return { name: "token", status: "ok", detail: `${file} (mode ${octal(bits)})`, data };
}

function databaseCheck(config: SpoolConfig): Check {
  if (config.databaseUrl) {
    const shown = config.databaseUrl.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
    return {
      name: "database",
      status: "ok",
      detail: `PostgreSQL at ${shown} (not connected to: the server's view below says whether it answers)`,
      data: { url: shown },
    };
  }
  const file = config.dbFile;
  if (!existsSync(file))
    return { name: "database", status: "info", detail: `${file} does not exist yet: the first \`spool serve\` creates it`, data: { path: file } };
  const size = statSync(file).size;
  const wal = existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0;
  const bits = mode(file);
  const data = { path: file, bytes: size, walBytes: wal, mode: octal(bits) };
  const detail = `${file}: ${mb(size)}, WAL ${mb(wal)} (mode ${octal(bits)})`;
  if ((bits & 0o077) !== 0)
    return { name: "database", status: "fail", detail: `${detail}: other users may read the commands' output`, fix: `chmod 600 ${file}*`, data };
  return { name: "database", status: "ok", detail, data };
}

const mb = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

function transportCheck(config: SpoolConfig): Check {
  const loopback = /^(127\.|::1$|localhost$|\[::1\]$)/.test(config.host);
  const address = `ws://${config.host.includes(":") ? `[${config.host}]` : config.host}:${config.port}/`;
  // Local clients use the home's socket; over TCP a client has the server prove it holds the credential's verifier
  // before it sends the token (SPEC §2c). There is no TLS, so no certificate fingerprint to pin.
  const socket = config.socketPath;
  const data = { host: config.host, port: config.port, loopback, tls: false, socket, proof: true };
  const both = `Unix socket ${socket} for local clients (0600 in the 0700 home); WebSocket on ${address}, where clients check the server's proof before sending a token`;
  if (loopback) return { name: "transport", status: "ok", detail: `${both} (loopback only; no TLS, so no certificate to pin)`, data };
  return {
    name: "transport",
    status: "warn",
    detail: `${both}; not a loopback address and without TLS: the token crosses the network in clear once the server has proved itself`,
    fix: 'listen on 127.0.0.1 ("host" in config.json, SPOOL_HOST) and reach it over SSH forwarding, or put a TLS proxy in front',
    data,
  };
}

function readNumber(file: string): number | null {
  try {
    return Number(readFileSync(file, "utf8").trim());
  } catch {
    return null;
  }
}

async function sandboxChecks(config: SpoolConfig, env: NodeJS.ProcessEnv): Promise<Check[]> {
  const checks: Check[] = [];
  // User namespaces: what bubblewrap needs without setuid.
  const maxNamespaces = readNumber("/proc/sys/user/max_user_namespaces");
  const unprivileged = readNumber("/proc/sys/kernel/unprivileged_userns_clone");
  const apparmor = readNumber("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  const userns = maxNamespaces !== 0 && unprivileged !== 0 && apparmor !== 1;
  checks.push(
    userns
      ? {
          name: "user namespaces",
          status: "ok",
          detail: `available (user.max_user_namespaces ${maxNamespaces ?? "unknown"})`,
          data: { maxNamespaces, unprivileged, apparmor },
        }
      : {
          name: "user namespaces",
          status: "warn",
          detail: `unprivileged user namespaces are off (max_user_namespaces ${maxNamespaces}, unprivileged_userns_clone ${unprivileged}, apparmor_restrict_unprivileged_userns ${apparmor})`,
          fix: "sysctl -w user.max_user_namespaces=15000 kernel.unprivileged_userns_clone=1 (or an AppArmor profile for bwrap); in a container, run it with a seccomp profile that allows them",
          data: { maxNamespaces, unprivileged, apparmor },
        },
  );
  const { info, path } = await probeBwrap("bwrap", { ...env, PATH: env.PATH ?? "" });
  const asked = config.sandbox === "workspace-write";
  checks.push(
    info.kind === "bwrap"
      ? {
          name: "bubblewrap",
          status: "ok",
          detail: `${path} builds the sandbox for ${process.getuid?.() === 0 ? "root" : "this user"}: modes ${(info.modes ?? []).join(", ")}`,
          data: { path, modes: info.modes },
        }
      : {
          name: "bubblewrap",
          status: asked ? "fail" : "warn",
          detail: `${info.detail}: only the full mode (no sandbox)${asked ? `, and the configuration asks for workspace-write` : ""}`,
          fix:
            path === null && !/cannot build/.test(info.detail)
              ? "apt-get install bubblewrap (or your distribution's bubblewrap)"
              : "enable unprivileged user namespaces (above)",
          data: { path, modes: info.modes },
        },
  );
  const networkers = ["pasta", "passt", "slirp4netns"].map((p) => [p, onPath(p, env)] as const).filter(([, file]) => file !== null);
  checks.push(
    networkers.length > 0
      ? { name: "sandbox network", status: "ok", detail: `${networkers.map(([p, f]) => `${p} (${f})`).join(", ")}`, data: Object.fromEntries(networkers) }
      : {
          name: "sandbox network",
          status: "info",
          detail: "neither passt/pasta nor slirp4netns is installed: a sandboxed command with the network shares the machine's",
          fix: "apt-get install passt (or slirp4netns) for a network namespace of its own",
        },
  );
  return checks;
}

async function dockerCheck(env: NodeJS.ProcessEnv): Promise<Check> {
  const host = env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
  const socket = host.startsWith("unix://") ? host.slice("unix://".length) : null;
  if (socket !== null && !existsSync(socket))
    return {
      name: "docker",
      status: "info",
      detail: `no Docker engine (${socket} does not exist): the docker runner backend is not available here`,
      fix: "install Docker (or set DOCKER_HOST) to run commands in containers",
      data: { host },
    };
  try {
    const { default: Docker } = await import("dockerode");
    const docker = socket !== null ? new Docker({ socketPath: socket, timeout: 5_000 }) : new Docker({ timeout: 5_000 });
    const version = (await docker.version()) as { Version?: string };
    const images = (await docker.listImages()).flatMap((i) => i.RepoTags ?? []).filter((t) => t !== "<none>:<none>");
    return {
      name: "docker",
      status: "ok",
      detail: `engine ${version.Version ?? "?"} at ${host}; ${images.length} image${images.length === 1 ? "" : "s"}${images.length > 0 ? ` (${images.slice(0, 5).join(", ")}${images.length > 5 ? ", …" : ""})` : ""}`,
      data: { host, version: version.Version, images },
    };
  } catch (error) {
    return {
      name: "docker",
      status: "warn",
      detail: `${host} does not answer: ${error instanceof Error ? error.message : String(error)}`,
      fix: "start the Docker engine, or add this user to the docker group",
      data: { host },
    };
  }
}

function sshCheck(): Check {
  // Runners are not configured on the server: each attaches itself (`spool runner --backend ssh …`).
  return {
    name: "ssh runners",
    status: "info",
    detail: "SSH runners attach themselves (`spool runner --backend ssh`); the server's view below counts those attached",
  };
}

async function modelChecks(config: SpoolConfig, call: boolean): Promise<Check[]> {
  const models = config.agent.models;
  if (models.length === 0)
    return [
      {
        name: "models",
        status: "info",
        detail: "none configured",
        fix: 'set SPOOL_MODEL_<ALIAS>=openai/<model-id> (docs/models.md "Agent runs"), or serve --demo-model',
      },
    ];
  const checks: Check[] = [];
  for (const model of models) {
    const name = `model ${model.alias}`;
    // A provider whose library knows its own address has no base URL of Spool's: the line says so, never a bare "at".
    const where = `${model.provider}/${model.model} at ${model.baseUrl || "the provider's own address"}`;
    const local = /^https?:\/\/(127\.|localhost|\[::1\])/.test(model.baseUrl);
    if (model.provider === "openai" && !model.apiKey && !local) {
      checks.push({ name, status: "fail", detail: `${where}: no API key`, fix: `set SPOOL_MODEL_${model.alias.toUpperCase()}_API_KEY (or OPENAI_API_KEY)` });
      continue;
    }
    if (!call || model.provider === "demo") {
      checks.push({ name, status: "ok", detail: `${where}${call ? "" : " (not called; --models asks it)"}` });
      continue;
    }
    try {
      const response = await fetch(`${model.baseUrl.replace(/\/$/, "")}/models`, {
        headers: model.apiKey && model.apiKey !== KEY_IN_SERVER ? { Authorization: `Bearer ${model.apiKey}` } : {},
        signal: AbortSignal.timeout(10_000),
      });
      checks.push(
        response.ok
          ? { name, status: "ok", detail: `${where}: answers (GET /models ${response.status})` }
          : { name, status: "fail", detail: `${where}: GET /models answered ${response.status}`, fix: "check the API key and the base URL" },
      );
    } catch (error) {
      checks.push({
        name,
        status: "fail",
        detail: `${where}: ${error instanceof Error ? error.message : String(error)}`,
        fix: "check that the model's server runs and the base URL",
      });
    }
  }
  return checks;
}

/** The running server's own view: its lock's process, /readyz, and a few of its /metrics. */
async function serverCheck(config: SpoolConfig, running: Running | null): Promise<Check> {
  const owner = (running ?? runningServer(config.home, true))?.owner;
  if (!owner) return { name: "server", status: "info", detail: `no server runs on ${config.home}`, fix: "spool serve" };
  const host = config.host.includes(":") ? `[${config.host}]` : config.host === "0.0.0.0" ? "127.0.0.1" : config.host;
  const base = `http://${host}:${config.port}`;
  const data: Record<string, unknown> = { pid: owner.pid, since: owner.startedAt, url: base };
  try {
    const ready = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(5_000) });
    data.ready = ready.status === 200;
    let token = "";
    try {
      token = readFileSync(config.tokenFile, "utf8").trim();
    } catch {
      // unreadable: the metrics are not read
    }
    const metrics = token ? await fetch(`${base}/metrics`, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) }) : null;
    const text = metrics?.ok ? await metrics.text() : "";
    const sum = (prefix: string) =>
      text
        .split("\n")
        .filter((l) => l.startsWith(prefix))
        .reduce((total, l) => total + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    const runners = Object.fromEntries(BACKEND_NAMES.map((name) => [name, sum(`spool_runners{backend="${name}"}`)]));
    Object.assign(data, {
      runners,
      connections: sum("spool_connections{"),
      pending: sum("spool_proposals_pending{"),
    });
    const summary = text
      ? `; ${plural(sum("spool_connections{"), "connection")}, runners ${BACKEND_NAMES.map((name) => `${name} ${runners[name]}`).join(" / ")}, ${plural(sum("spool_proposals_pending{"), "proposal")} pending`
      : "";
    return ready.status === 200
      ? { name: "server", status: "ok", detail: `pid ${owner.pid} at ${base}, ready${summary}`, data }
      : {
          name: "server",
          status: "fail",
          detail: `pid ${owner.pid} at ${base} answers /readyz ${ready.status}`,
          fix: "see the server's log for why it is not ready",
          data,
        };
  } catch (error) {
    return {
      name: "server",
      status: "warn",
      detail: `pid ${owner.pid} holds the home but ${base} does not answer (${error instanceof Error ? error.message : String(error)}): another port, or busy`,
      fix: "check the server's --port and --host against this configuration",
      data,
    };
  }
}

/** `1 connection`, `2 connections`. */
function plural(count: number | string, noun: string): string {
  return `${count} ${noun}${Number(count) === 1 ? "" : "s"}`;
}

/**
 * One check per receiver of notifications, from the running server's `notify/list`: its state (last delivered,
 * failing since, deliveries owed). A failing receiver is a FAIL: what the configuration asks for (that someone is
 * told) is not happening, and with every receiver failing nobody is told of anything.
 */
export function receiverChecks(receivers: ReceiverView[] | string, now: number = Date.now()): Check[] {
  if (typeof receivers === "string")
    return [{ name: "notifications", status: "warn", detail: `the receivers' state could not be read: ${receivers}`, fix: "spool notify list" }];
  if (receivers.length === 0)
    return [{ name: "notifications", status: "info", detail: "no receivers", fix: "spool notify add NAME URL (docs/credentials.md)" }];
  const failing = receivers.filter((r) => r.failingSince !== null).length;
  return receivers.map((r) => {
    const { failing: fails, words } = receiverStateWords(r, now);
    const data = { url: r.url, pending: r.pending, deliveredAt: r.deliveredAt, failingSince: r.failingSince, lastError: r.lastError };
    if (!fails) return { name: `notify ${r.name}`, status: "ok", detail: `${r.url}: ${words}`, data };
    const nobody =
      failing === receivers.length ? (receivers.length === 1 ? ": the only receiver, so nobody is told" : ": every receiver fails, so nobody is told") : "";
    return {
      name: `notify ${r.name}`,
      status: "fail",
      detail: `${r.url}: ${words}${nobody}`,
      fix: `check that ${r.url} answers (spool notify test ${r.name}); what it is owed is kept and retried`,
      data,
    };
  });
}
