import { loadConfig } from "../config.js";
import { type Check, type CheckStatus, runChecks } from "../ops/doctor.js";
import { type Command, defineCommand, parseSpec, positionals, showHelp } from "./command-spec.js";
import { portAndDatabase } from "./common.js";
import { EXIT, usageError } from "./errors.js";

export const DOCTOR_SPEC = defineCommand({
  name: "doctor",
  usage: "spool doctor [options]",
  about: `Checks what this machine gives Spool, and says how to fix each problem: the
Node version, whether the native modules (better-sqlite3, node-pty, ssh2's
ciphers) load in it or were built for another Node, the home's and the token
file's modes, the database (its size and WAL), the transport, user namespaces
and whether bubblewrap builds the sandbox for this user (and so which sandbox
modes commands get), passt/pasta or slirp4netns, a reachable Docker engine and
its images, the configured models, and the view of the server running on this
home, if one does.
A server running for the home is described as it was started (its address,
database and models, which it writes to $SPOOL_HOME/server.json); with none,
the configuration and --port/--database are. Nothing is changed, and no
model is called unless --models.`,
  width: 13,
  options: {
    home: { type: "string", arg: "DIR", help: "Spool home to check        [$SPOOL_HOME, ~/.spool]" },
    port: { type: "string", arg: "N", help: "the port spool serve is given  [$SPOOL_PORT, config.json, 7420]" },
    database: { type: "string", arg: "URL", help: "the PostgreSQL URL spool serve is given   [$SPOOL_DATABASE_URL]" },
    models: { type: "boolean", help: "ask each configured model's server for its model list" },
    json: { type: "boolean", help: 'print the checks as JSON: {"ok": bool, "checks": [{name, status, detail, fix?, data?}]}' },
  },
  epilogue: `Exit status: 0 when nothing the configuration asks for is missing or unsafe
(a "fail"), 1 otherwise; warnings and missing extras do not count.`,
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
  const checks = await runChecks({ config, env, models: values.models === true });
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
