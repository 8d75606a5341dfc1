// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { commandVariables, isSensitiveName, passedVariables } from "../../src/runners/environment.js";
import { describeWithInfra, infra, sshRunnerFlags } from "../helpers/infra.js";
import { type RunnerProcess, spawnRunner, spawnServe } from "../helpers/process.js";
import { runTool } from "../helpers/runners.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Commands get a clean environment: the base, the names the configuration
 * allows, the proposal's env. Never the server's or the runner's own
 * secrets. Each test runs `env` on a real runner and reads every name it
 * printed.
 */

/** What a hostile or careless operator has in the environment of the server or the runner. */
const SECRETS = {
  OPENAI_API_KEY: "sk-leak-openai",
  ANTHROPIC_API_KEY: "sk-leak-anthropic",
  GITHUB_TOKEN: "ghp_leak",
  AWS_SECRET_ACCESS_KEY: "leak-aws",
  DB_PASSWORD: "leak-db",
  SPOOL_HOME_LEAK: "leak-spool",
  MY_SESSION_COOKIE: "leak-cookie",
  // Matched by the allowed pattern MYAPP_*, but named like a secret: a pattern never lets it through.
  MYAPP_TOKEN: "leak-pattern",
};
/** Allowed: an exact name, a secret-looking name given exactly, and a pattern. */
const ALLOWED = { EXTRA_VISIBLE: "visible-1", DEPLOY_KEY_ID: "configured-by-name", MYAPP_MODE: "fast", MYAPP_REGION: "eu" };
const COMMAND_ENV = ["EXTRA_VISIBLE", "DEPLOY_KEY_ID", "MYAPP_*"];
const NOT_ALLOWED = { UNLISTED_SETTING: "not-listed" };
const PROPOSAL_ENV = { FROM_PROPOSAL: "p1" };

function parseEnv(output: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of output.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) vars[line.slice(0, at)] = line.slice(at + 1);
  }
  return vars;
}

/** Runs `env` (printing one NAME=value a line, values without newlines) as a sh proposal and returns what it printed. */
async function envOf(client: SpoolClient, run: string, runner?: string): Promise<Record<string, string>> {
  const done = await runTool(client, run, "sh", "env", { env: PROPOSAL_ENV, runner });
  expect(done.stdout.status, done.err).toBe(ENTRY.done);
  return parseEnv(done.out);
}

function expectNoSecrets(vars: Record<string, string>): void {
  for (const name of [...Object.keys(SECRETS), ...Object.keys(NOT_ALLOWED)]) expect(vars, name).not.toHaveProperty(name);
  const leaked = Object.values(SECRETS).filter((value) => Object.values(vars).some((v) => v.includes(value)));
  expect(leaked).toEqual([]);
  expect(Object.keys(vars).filter((name) => name.startsWith("SPOOL_"))).toEqual([]);
}

describe("environment rules", () => {
  it("names that look like keys, tokens, secrets or Spool's own are sensitive; ordinary ones are not", () => {
    for (const name of [
      "OPENAI_API_KEY",
      "GITHUB_TOKEN",
      "AWS_SECRET_ACCESS_KEY",
      "DB_PASSWORD",
      "PGPASSWORD",
      "SSH_AUTH_SOCK",
      "SENTRY_DSN",
      "SPOOL_HOME",
      "spool_x",
      "GPG_PASSPHRASE",
      "GOOGLE_APPLICATION_CREDENTIALS",
      "NPM_AUTH",
      "GH_PAT",
    ]) {
      expect(isSensitiveName(name), name).toBe(true);
    }
    for (const name of ["PATH", "HOME", "LANG", "LC_ALL", "TERM", "EDITOR", "GOPATH", "NODE_ENV", "MYAPP_MODE", "HTTP_PROXY"]) {
      expect(isSensitiveName(name), name).toBe(false);
    }
  });

  it("exact names pass whatever they are called; patterns skip sensitive names; the proposal's env wins", () => {
    const source = { ...SECRETS, ...ALLOWED, ...NOT_ALLOWED, SPOOL_MODEL_X: "openai/x", MYAPP_SPOOL: "ok", PATH: "/runner/bin" };
    expect(passedVariables(source, COMMAND_ENV)).toEqual({ ...ALLOWED, MYAPP_SPOOL: "ok" });
    const { DEPLOY_KEY_ID: _named, ...unnamed } = ALLOWED;
    expect(passedVariables(source, ["*"])).toEqual({ ...unnamed, ...NOT_ALLOWED, MYAPP_SPOOL: "ok", PATH: "/runner/bin" });
    expect(passedVariables(source, ["OPENAI_API_KEY", "not a name", "MISSING"])).toEqual({ OPENAI_API_KEY: "sk-leak-openai" });
    expect(commandVariables(source, ["EXTRA_VISIBLE"], { EXTRA_VISIBLE: "from-proposal", X: "1" })).toEqual({ EXTRA_VISIBLE: "from-proposal", X: "1" });
  });
});

describe("the embedded local runner (in the server's process)", () => {
  let ts: TestServer;
  const saved: Record<string, string | undefined> = {};
  beforeAll(async () => {
    for (const [k, v] of Object.entries({ ...SECRETS, ...ALLOWED, ...NOT_ALLOWED, LANG: "C.UTF-8", TERM: "xterm-test" })) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    ts = await startTestServer({ commandEnv: COMMAND_ENV });
  });
  afterAll(async () => {
    await ts.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it("a command sees exactly the base, the configured names and the proposal's env", async () => {
    const client = await ts.clientIn("env-embedded");
    const vars = await envOf(client, "e1");
    expectNoSecrets(vars);
    const { PWD: _pwd, ...rest } = vars;
    expect(rest).toEqual({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: "C.UTF-8",
      TERM: "xterm-test",
      ...ALLOWED,
      ...PROPOSAL_ENV,
    });
  });
});

describe("spool serve (a real server process with secrets in its environment)", () => {
  it("env on the embedded runner prints none of the server's secrets, only SPOOL_COMMAND_ENV's names", async () => {
    const home = tempDir();
    const server = await spawnServe(["--port", "0", "--home", home], {
      ...SECRETS,
      ...ALLOWED,
      ...NOT_ALLOWED,
      SPOOL_COMMAND_ENV: COMMAND_ENV.join(","),
      SPOOL_MODEL_LEAKY: "openai/gpt-x",
    });
    try {
      const client = await SpoolClient.connect(server.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
      await client.initialize("env-serve", { root: tempDir("spool-root-") });
      const vars = await envOf(client, "s1");
      expectNoSecrets(vars);
      expect(Object.keys(vars).sort()).toEqual(["FROM_PROPOSAL", "HOME", "LANG", "PATH", "PWD", "TERM", ...Object.keys(ALLOWED)].sort());
      expect(vars).toMatchObject({ ...ALLOWED, ...PROPOSAL_ENV });
      client.close();
    } finally {
      await server.stop();
    }
  });
});

describe("commandEnv withholds values that carry credentials, whatever their names (issue 37)", () => {
  it("unit: URLs with a password and known token shapes are withheld from patterns and named; exact names still pass", () => {
    const source = {
      DATABASE_URL: "postgres://admin:pw@db.internal:5432/app",
      REDIS_URL: "redis://:pw@127.0.0.1:6379",
      PLAIN_URL: "https://example.org/path",
      APP_OPENAI: "sk-proj-abcdefghijklmnop1234",
      APP_GH: `ghp_${"a".repeat(36)}`,
      APP_SLACK: "xoxb-1234567890-abcdef",
      APP_AWS: "AKIAIOSFODNN7EXAMPLE",
      APP_COLOR: "blue",
    };
    let named: string[] = [];
    const passed = passedVariables(source, ["*", "APP_GH"], (names) => (named = names));
    expect(Object.keys(passed).sort()).toEqual(["APP_COLOR", "APP_GH", "PLAIN_URL"]);
    expect(named).toEqual(["APP_AWS", "APP_OPENAI", "APP_SLACK", "DATABASE_URL", "REDIS_URL"]);
  });

  it('spool serve with commandEnv "*": env on its runner shows none of them, and the log names what was withheld', async () => {
    const home = tempDir();
    const server = await spawnServe(["--port", "0", "--home", home], {
      DATABASE_URL: "postgres://admin:pw@127.0.0.1:5432/app",
      REDIS_URL: "redis://:pw@127.0.0.1:6379",
      APP_COLOR: "blue",
      SPOOL_COMMAND_ENV: "*",
    });
    try {
      const client = await SpoolClient.connect(server.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
      await client.initialize("env-creds", { root: tempDir("spool-root-") });
      const done = await runTool(client, "c1", "sh", "env");
      const vars = parseEnv(done.out);
      expect(vars).toMatchObject({ APP_COLOR: "blue" });
      expect(vars).not.toHaveProperty("DATABASE_URL");
      expect(vars).not.toHaveProperty("REDIS_URL");
      expect(done.out).not.toContain(":pw@");
      expect(server.output()).toMatch(/withheld from the command: .*DATABASE_URL, REDIS_URL/);
      expect(server.output()).not.toContain(":pw@");
      client.close();
    } finally {
      await server.stop();
    }
  });
});

interface RunnerCase {
  kind: "local" | "docker" | "ssh";
  flags: () => string[];
  /** The names the backend's base has, besides the configured ones and the proposal's. */
  base: string[];
}

const cases: RunnerCase[] = [
  { kind: "local", flags: () => ["--backend", "local"], base: ["HOME", "LANG", "PATH", "PWD", "TERM"] },
  // The image's own environment (PATH from its ENV; HOME and HOSTNAME as Docker sets them).
  { kind: "docker", flags: () => ["--backend", "docker", "--image", infra.dockerImage!], base: ["HOME", "HOSTNAME", "PATH", "PWD", "SHLVL"] },
  {
    kind: "ssh",
    flags: () => sshRunnerFlags(),
    // The remote login's PATH and HOME, LANG and TERM (defaults there); nothing else of the login (USER, SSH_CONNECTION, MAIL…).
    base: ["HOME", "LANG", "PATH", "PWD", "TERM"],
  },
];

for (const c of cases) {
  describeWithInfra(c.kind, `spool runner --backend ${c.kind} (a real runner process with secrets in its environment)`, () => {
    let ts: TestServer;
    let runner: RunnerProcess;
    beforeAll(async () => {
      ts = await startTestServer({ localRunner: false, commandEnv: ["EXTRA_VISIBLE", "MYAPP_*"] });
      // The project (and its root) exists before the runner joins it.
      (await ts.clientIn(`env-${c.kind}`)).close();
      runner = await spawnRunner(
        [
          "--server",
          ts.server.url,
          "--token-file",
          ts.server.config.tokenFile,
          "--project",
          `env-${c.kind}`,
          "--name",
          "env-box",
          "--pass-env",
          "DEPLOY_KEY_ID",
          ...c.flags(),
        ],
        { ...SECRETS, ...ALLOWED, ...NOT_ALLOWED },
      );
    }, 60_000);
    afterAll(async () => {
      await runner?.stop();
      await ts?.stop();
    });

    it("env prints the backend's base, the names the server's commandEnv and the runner's --pass-env allow, the proposal's env; no secrets", async () => {
      const client = await ts.clientIn(`env-${c.kind}`);
      const vars = await envOf(client, "r1", "env-box");
      expectNoSecrets(vars);
      expect(Object.keys(vars).sort()).toEqual([...c.base, "FROM_PROPOSAL", ...Object.keys(ALLOWED)].sort());
      expect(vars).toMatchObject({ ...ALLOWED, ...PROPOSAL_ENV });
      if (c.kind === "local") expect(vars.PATH).toBe(process.env.PATH);
      if (c.kind === "docker") expect(vars.PATH).toBe("/bin");
    });
  });
}
