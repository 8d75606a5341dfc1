import { existsSync, readFileSync } from "node:fs";
import { SpoolClient } from "../../client/spool-client.js";
import { unixSocketUrl } from "../../client/ws-transport.js";
import { loadConfig, type SpoolConfig } from "../../config/config.js";
import { type Check, type CheckStatus, type ReceiverView, runChecks } from "../../ops/doctor.js";
import { type Command, defineCommand, parseSpec, positionals, showHelp } from "../command-spec.js";
import { portAndDatabase } from "../common.js";
import { EXIT, usageError } from "../errors.js";

export const DOCTOR_SPEC = defineCommand({
  name: "doctor",
  usage: "spool doctor [options]",
  about: `Checks what this machine gives Spool, and says how to fix each problem: the
Node version (Spool is tested on 24, 22 and 20, past its end of life), whether
the native modules (better-sqlite3: 13 on Node 22 and 24, 12 on Node 20;
node-pty; ssh2's ciphers, not loaded on Node 24) load in it or were built for
another Node, the home's and the token file's modes, the database (its size
and WAL), the transport, user namespaces and whether bubblewrap builds the
sandbox for this user (and so which sandbox modes commands get), passt/pasta or
slirp4netns, a reachable Docker engine and its images, the configured models,
and the view of the server running on this home, if one does, with each
receiver of notifications: when a delivery last reached it, since when it
fails and why, and the deliveries it is owed. A server running for the home
is described as it was started (its address, database and models, which it
writes to $SPOOL_HOME/server.json); with none, the configuration and
--port/--database are. Nothing is changed, and no model is called unless --models.`,
  width: 13,
  options: {
    home: { type: "string", arg: "DIR", help: "Spool home to check        [$SPOOL_HOME, ~/.spool]" },
    port: { type: "string", arg: "N", help: "the port spool serve is given  [$SPOOL_PORT, config.json, 7420]" },
    database: { type: "string", arg: "URL", help: "the PostgreSQL URL spool serve is given   [$SPOOL_DATABASE_URL]" },
    models: { type: "boolean", help: "ask each configured model's server for its model list" },
    json: { type: "boolean", help: 'print the checks as JSON: {"ok": bool, "checks": [{name, status, detail, fix?, data?}]}' },
  },
  epilogue: `Exit status: 0 when nothing the configuration asks for is missing or unsafe
(a "fail", a failing receiver of notifications among them), 1 otherwise;
warnings and missing extras do not count.`,
});

export const DOCTOR: Command = { spec: DOCTOR_SPEC, run: (argv) => doctor(argv) };

const MARK: Record<CheckStatus, string> = { ok: "ok  ", info: "--  ", warn: "WARN", fail: "FAIL" };

export async function doctor(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals: rest } = parseSpec(DOCTOR_SPEC, argv);
  if (values.help) return showHelp(DOCTOR_SPEC);
  positionals("doctor", rest, []);
  let config: ReturnType<typeof loadConfig>;
  const { port } = portAndDatabase(values);
  try {
    config = loadConfig(
      {
        ...(values.home === undefined ? {} : { home: values.home }),
        ...(port === undefined ? {} : { port }),
        ...(values.database === undefined ? {} : { database: values.database }),
      },
      env,
    );
  } catch (error) {
    throw usageError(error instanceof Error ? error.message : String(error));
  }
  const checks = await runChecks({ config, env, models: values.models === true, receivers });
  const ok = !checks.some((c) => c.status === "fail");
  process.stdout.write(values.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : human(checks, ok));
  return ok ? EXIT.ok : EXIT.failed;
}

function human(checks: Check[], ok: boolean): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map(
    (c) => `${MARK[c.status]}  ${c.name.padEnd(width)}  ${c.detail}${c.fix && c.status !== "ok" ? `\n${" ".repeat(width + 8)}fix: ${c.fix}` : ""}`,
  );
  const failed = checks.filter((c) => c.status === "fail").length;
  return `${lines.join("\n")}\n\n${ok ? "Nothing the configuration asks for is missing." : `${failed} problem${failed === 1 ? "" : "s"} to fix (FAIL above).`}\n`;
}

/** How long doctor waits for the running server's list of receivers. */
const RECEIVERS_WAIT_MS = 5_000;

/** The running server's receivers of notifications (notify/list with the home's token), or why they could not be read. */
async function receivers(config: SpoolConfig): Promise<ReceiverView[] | string> {
  const host = config.host === "0.0.0.0" || config.host === "" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host;
  const url = existsSync(config.socketPath) ? unixSocketUrl(config.socketPath) : `ws://${host.includes(":") ? `[${host}]` : host}:${config.port}/`;
  let client: SpoolClient | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    const token = readFileSync(config.tokenFile, "utf8").trim();
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${RECEIVERS_WAIT_MS / 1000} s`)), RECEIVERS_WAIT_MS);
    });
    const asked = (async () => {
      client = await SpoolClient.connect(url, { token });
      return (await client.call("notify/list", {})).targets;
    })();
    return await Promise.race([asked, late]);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
    (client as SpoolClient | null)?.close();
  }
}
