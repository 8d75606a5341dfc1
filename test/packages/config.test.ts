import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { spawnCli } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/** A Spool home whose config.json holds `text` (a string, written as is) or `settings`. */
function homeWith(settings: unknown): { home: string; file: string } {
  const home = tempDir("spool-config-");
  const file = join(home, "config.json");
  writeFileSync(file, typeof settings === "string" ? settings : JSON.stringify(settings));
  return { home, file };
}

/** What loadConfig says about a config.json holding `settings`, with the file's path written as FILE. */
function problem(settings: unknown, env: NodeJS.ProcessEnv = {}): string {
  const { home, file } = homeWith(settings);
  try {
    loadConfig({ home }, env);
  } catch (error) {
    return (error as Error).message.split(file).join("FILE");
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(settings)}`);
}

describe("config.json", () => {
  it("holds every setting spool serve has a flag for; the flag wins over the environment, which wins over the file", () => {
    const { home } = homeWith({ host: "127.0.0.2", port: 7433, allowedOrigins: ["http://localhost:5173"], localRunner: false, plugins: ["some-package"] });
    const fromFile = loadConfig({ home }, {});
    expect(fromFile).toMatchObject({ host: "127.0.0.2", port: 7433, allowedOrigins: ["http://localhost:5173"], localRunner: false, plugins: ["some-package"] });
    const env = { SPOOL_HOST: "127.0.0.3", SPOOL_PORT: "7434", SPOOL_ALLOWED_ORIGINS: "http://a.test", SPOOL_LOCAL_RUNNER: "on" };
    expect(loadConfig({ home }, env)).toMatchObject({ host: "127.0.0.3", port: 7434, allowedOrigins: ["http://a.test"], localRunner: true });
    const flags = { host: "127.0.0.4", port: 0, allowedOrigins: ["http://b.test"], localRunner: false, plugins: ["other-package"] };
    // Plugins add up: the file's, then the flags'.
    expect(loadConfig({ home, ...flags }, env)).toMatchObject({ ...flags, plugins: ["some-package", "other-package"] });
  });

  it("the other settings too: toolYieldMs, outputTokens, timeouts, limits", () => {
    const { home } = homeWith({ toolYieldMs: 250, toolKillWaitMs: 40, outputTokens: 900, commandTimeoutMs: 0, runnerGraceMs: 5, limits: { maxBatchSize: 7 } });
    const config = loadConfig({ home }, {});
    expect(config.agent).toMatchObject({ toolYieldMs: 250, toolKillWaitMs: 40, outputBudgetTokens: 900 });
    expect(config).toMatchObject({ commandTimeoutMs: 0, runnerGraceMs: 5 });
    expect(config.limits.maxBatchSize).toBe(7);
    expect(loadConfig({ home }, { SPOOL_TOOL_YIELD_MS: "1", SPOOL_TOOL_KILL_WAIT_MS: "3", SPOOL_OUTPUT_TOKENS: "2" }).agent).toMatchObject({
      toolYieldMs: 1,
      toolKillWaitMs: 3,
      outputBudgetTokens: 2,
    });
  });

  it("scavengeEveryMb: 2 by default, from the file or SPOOL_SCAVENGE_EVERY_MB, 0 turns it off; a bad value is refused", () => {
    expect(loadConfig({ home: tempDir("spool-config-") }, {}).scavengeEveryMb).toBe(2);
    const { home } = homeWith({ scavengeEveryMb: 0 });
    expect(loadConfig({ home }, {}).scavengeEveryMb).toBe(0);
    expect(loadConfig({ home }, { SPOOL_SCAVENGE_EVERY_MB: "8" }).scavengeEveryMb).toBe(8);
    expect(problem({ scavengeEveryMb: -1 })).toBe('FILE: "scavengeEveryMb" must be a whole number of MB, 0 or more, got -1');
    expect(problem({}, { SPOOL_SCAVENGE_EVERY_MB: "lots" })).toBe('SPOOL_SCAVENGE_EVERY_MB must be a non-negative integer, got "lots"');
  });

  it("sandboxView: read and write paths for every project, a project's own replacing both; nothing added by default", () => {
    expect(loadConfig({ home: tempDir("spool-config-") }, {}).sandboxView).toEqual({ read: [], write: [], projects: {} });
    const view = { read: ["~/.gitconfig", "/srv/data"], write: ["~/.cache/pip"], projects: { web: { read: ["~/.npmrc.public"] } } };
    expect(loadConfig({ home: homeWith({ sandboxView: view }).home }, {}).sandboxView).toEqual(view);
  });

  it("sandboxView: a path that is not absolute or ~/, is / or ~ itself, or has . or .. parts is refused, saying why", () => {
    const must = "an absolute path or one starting with ~/";
    expect(problem({ sandboxView: { read: ["relative/x"] } })).toBe(`FILE: "sandboxView.read[0]" must be ${must} (it is relative), got "relative/x"`);
    expect(problem({ sandboxView: { write: ["~/"] } })).toBe(
      `FILE: "sandboxView.write[0]" must be ${must} (it names all of / or ~, not a path below them), got "~/"`,
    );
    expect(problem({ sandboxView: { read: ["/"] } })).toContain("(it names all of / or ~, not a path below them)");
    expect(problem({ sandboxView: { read: ["~/x/../.ssh"] } })).toContain("(it has a . or .. part)");
    expect(problem({ sandboxView: { projects: { web: { read: ["x"] } } } })).toBe(
      `FILE: "sandboxView.projects.web.read[0]" must be ${must} (it is relative), got "x"`,
    );
    expect(problem({ sandboxView: { hide: [] } })).toMatch(/^FILE: "sandboxView\.hide" is not a setting/);
  });

  it("sandboxHide, removed, is refused with what replaced it: never ignored", () => {
    expect(problem({ sandboxHide: ["~/.ssh"] })).toBe(
      'FILE: sandboxHide was removed: a sandboxed command no longer sees the whole machine minus the paths it hides; it sees only the system directories, its project, a private /tmp and home, the toolchains its PATH names and the paths you add with "sandboxView": {"read": [...], "write": [...]} (docs/runners.md, "What a command sees") — remove sandboxHide from config.json',
    );
  });

  it("the sandbox settings: sandbox (auto, workspace-write, full) and sandboxNetwork, from the file or SPOOL_SANDBOX / SPOOL_SANDBOX_NETWORK", () => {
    expect(loadConfig({ home: tempDir("spool-config-") }, {})).toMatchObject({ sandbox: "auto", sandboxNetwork: true });
    const { home } = homeWith({ sandbox: "full", sandboxNetwork: false });
    expect(loadConfig({ home }, {})).toMatchObject({ sandbox: "full", sandboxNetwork: false });
    expect(loadConfig({ home }, { SPOOL_SANDBOX: "workspace-write", SPOOL_SANDBOX_NETWORK: "on" })).toMatchObject({
      sandbox: "workspace-write",
      sandboxNetwork: true,
    });
    expect(problem({ sandbox: "none" })).toBe('FILE: "sandbox" must be "auto", "workspace-write" or "full", got "none"');
    expect(problem({ sandboxNetwork: "off" })).toBe('FILE: "sandboxNetwork" must be true or false, got "off"');
    expect(() => loadConfig({ home: tempDir("spool-config-") }, { SPOOL_SANDBOX: "danger" })).toThrow(
      'SPOOL_SANDBOX must be auto, workspace-write or full, got "danger"',
    );
  });

  it("relative plugin paths: from config.json's directory for the file's, from the current directory for the flags'", () => {
    const { home } = homeWith({ plugins: ["./plugins/a.mjs", "../shared/b.mjs", "/abs/c.mjs", "pkg-d"] });
    const config = loadConfig({ home, plugins: ["./e.mjs", "pkg-f"] }, {});
    expect(config.plugins).toEqual([join(home, "plugins/a.mjs"), join(home, "../shared/b.mjs"), "/abs/c.mjs", "pkg-d", join(process.cwd(), "e.mjs"), "pkg-f"]);
  });

  it("an error names the file and the key, says what the key must hold, and shows what it got", () => {
    expect(problem({ port: "abc" })).toBe('FILE: "port" must be an integer 0-65535, got "abc"');
    expect(problem({ port: 70000 })).toBe('FILE: "port" must be an integer 0-65535, got 70000');
    expect(problem({ host: 5 })).toBe('FILE: "host" must be an address or host name (a string), got 5');
    expect(problem({ localRunner: "no" })).toBe('FILE: "localRunner" must be true or false, got "no"');
    expect(problem({ plugins: ["./a.mjs", 3] })).toBe('FILE: "plugins[1]" must be a plugin path (./x.ts, /abs/x.js) or package name, got 3');
    expect(problem({ allowedOrigins: "http://a.test" })).toBe('FILE: "allowedOrigins" must be a list of origins, got "http://a.test"');
    expect(problem({ commandEnv: ["OK", "A B"] })).toBe('FILE: "commandEnv[1]" must be a variable name or a pattern with *, got "A B"');
    expect(problem({ limits: { maxBatchSize: 0 } })).toBe('FILE: "limits.maxBatchSize" must be a positive integer, got 0');
    expect(problem({ modelMaxTokens: { fast: -1 } })).toBe('FILE: "modelMaxTokens.fast" must be a positive integer, got -1');
    expect(problem({ failurePatterns: ["(open"] })).toMatch(
      /^FILE: "failurePatterns\[0\]" must be a regular expression \(.*Unterminated group\), got "\(open"$/,
    );
  });

  it("every problem on its own line; unknown keys are named with the known ones", () => {
    const lines = problem({ prot: 1, port: "x", limits: { maxBatch: 1 } }).split("\n");
    expect(lines).toHaveLength(3);
    expect(lines).toContain('FILE: "port" must be an integer 0-65535, got "x"');
    expect(lines.find((l) => l.includes('"prot"'))).toMatch(/^FILE: "prot" is not a setting — did you mean "port"\? \(known: host, port, .*plugins.*\)$/);
    expect(lines.find((l) => l.includes("maxBatch"))).toMatch(
      /^FILE: "limits.maxBatch" is not a setting — did you mean "limits.maxBatchSize"\? \(known in limits: .*maxBatchSize.*\)$/,
    );
  });

  it("a file that is not JSON, or not an object, says so with the file and where", () => {
    expect(problem('{"port": 1,}')).toMatch(/^FILE: not valid JSON: .* \(line 1, column 12\)$/);
    expect(problem('{\n  "port": 1\n  "host": "x"\n}')).toMatch(/^FILE: not valid JSON: .* \(line 3, column 3\)$/);
    expect(problem("[1, 2]")).toBe('FILE: must hold a JSON object of settings, e.g. {"port": 7420}, got [1,2]');
  });

  it("the environment's values are checked with the variable's name", () => {
    expect(problem({}, { SPOOL_PORT: "99999" })).toBe('SPOOL_PORT must be 0-65535, got "99999"');
    expect(problem({}, { SPOOL_PORT: "abc" })).toBe('SPOOL_PORT must be a non-negative integer, got "abc"');
  });

  it("spool serve with a bad config.json exits 1 with the file and the key, and starts nothing", async () => {
    const { home, file } = homeWith({ port: "abc" });
    const serve = spawnCli(["serve", "--home", home]);
    const { code } = await serve.exitsWithin(30_000);
    expect(code).toBe(1);
    expect(serve.stderr()).toBe(`spool serve: ${file}: "port" must be an integer 0-65535, got "abc"\n`);
    expect(serve.stdout()).toBe("");
    expect(readdirSync(home)).toEqual(["config.json"]);
  });
});
