import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { runCliProcess, SPOOL_BIN } from "../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/*
 * `spool mcp add` / `spool acp add` as a person runs them, against a real server: what they refuse changes nothing
 * (no principal, no file, no client run), what they make is an agent's credential for one project, and running them
 * again reuses, rotates or refuses as docs/credentials.md says. `spool mcp --credential` / `spool acp --credential`
 * never fall back to another credential. (test/docs/recipes.test.ts runs the docs' recipes themselves.)
 */

const FIXTURES = fileURLToPath(new URL("../fixtures/clients/", import.meta.url));

describe("spool mcp add and spool acp add", () => {
  let ts: TestServer;
  let env: NodeJS.ProcessEnv;
  let bin: string;
  let argvLog: string;
  let cwd: string;

  const spool = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCliProcess(args, { ...env, ...extra }, cwd, 120_000);
  const credentials = () => join(ts.home, "credentials");
  const principals = async () => {
    const admin = await ts.client();
    try {
      return (await admin.call("token/list", { revoked: false })).principals;
    } finally {
      admin.close();
    }
  };
  const whoIs = async (token: string) => {
    const c = await SpoolClient.connect(ts.server.url, { token });
    try {
      return (await c.initialize("app", { create: false })).principal;
    } finally {
      c.close();
    }
  };
  const ran = () => (existsSync(argvLog) ? readFileSync(argvLog, "utf8").trim().split("\n").filter(Boolean) : []);

  beforeAll(async () => {
    ts = await startTestServer();
    await ts.clientIn("app");
    bin = tempDir("spool-add-bin-");
    for (const name of ["claude", "codex"]) {
      writeFileSync(join(bin, name), `#!/bin/sh\nexec "${process.execPath}" "${join(FIXTURES, `${name}.mjs`)}" "$@"\n`);
      chmodSync(join(bin, name), 0o755);
    }
    argvLog = join(tempDir("spool-add-log-"), "argv.log");
    cwd = tempDir("spool-add-cwd-");
    const home = tempDir("spool-add-home-");
    env = {
      HOME: home,
      SPOOL_HOME: ts.home,
      SPOOL_SERVER: ts.server.url,
      SPOOL_TOKEN_FILE: join(ts.home, "token"),
      PATH: `${bin}:${process.env.PATH}`,
      CLIENT_ARGV_LOG: argvLog,
    };
  });
  afterAll(() => ts.stop());

  it("bad input is refused, exit 2 (4 for a project there is not), and changes nothing: no principal, no file, no client run", async () => {
    const refused: [string[], number, RegExp][] = [
      [["mcp", "add"], 2, /takes one CLIENT/],
      [["mcp", "add", "a/b", "--project", "app"], 2, /CLIENT is 1-64/],
      [["mcp", "add", "claude", "--project", "app", "--role", "admin"], 2, /--role is agent or person/],
      [["mcp", "add", "claude", "--project", "app", "--transport", "ws"], 2, /--transport is stdio or http/],
      [["mcp", "add", "claude", "--project", "app", "--scope", "team"], 2, /--scope is local, project or user/],
      [["mcp", "add", "codex", "--project", "app", "--scope", "user"], 2, /--scope is Claude Code's/],
      [["mcp", "add", "claude", "--project", "app", "--scope", "project", "--transport", "http"], 2, /shared with the project/],
      [["mcp", "add", "claude", "--project", "app", "--url", "http://x"], 2, /--url is for --transport http/],
      [["mcp", "add", "cursor", "--project", "app", "--transport", "http", "--url", "ftp://x"], 2, /--url is an http/],
      [["mcp", "add", "claude", "--project", "app", "--expires", "0d"], 2, /--expires takes a duration/],
      [["mcp", "add", "claude", "--project", "app", "--name", "../x"], 2, /--name is 1-64/],
      [["acp", "add", "zed", "--project", "app", "--transport", "http", "--model", "fast"], 2, /--model is spool acp's/],
      [["mcp", "add", "claude", "--project", "ap"], 4, /no project "ap" — did you mean "app"\?/],
      [["mcp", "add", "claude", "--project", "app", "--bogus"], 2, /Unknown option '--bogus'/],
    ];
    // Four at a time: each is a process of its own, and none changes anything another could see.
    for (let i = 0; i < refused.length; i += 4) {
      await Promise.all(
        refused.slice(i, i + 4).map(async ([args, code, message]) => {
          const result = await spool(args);
          expect(result.code, `${args.join(" ")}: ${result.err}`).toBe(code);
          expect(result.err, args.join(" ")).toMatch(message);
        }),
      );
    }
    // Claude Code not installed: refused before anything is made, saying what to do.
    const missing = await spool(["mcp", "add", "claude", "--project", "app"], { PATH: "/usr/bin:/bin" });
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("claude is not on PATH");
    expect(missing.err).toContain("--print");
    expect(await principals()).toEqual([]);
    expect(existsSync(credentials())).toBe(false);
    expect(ran()).toEqual([]);
  }, 300_000);

  it("--dry-run makes nothing and runs nothing: it says what it would make and prints the command, even where claude is not installed", async () => {
    const dry = await spool(["mcp", "add", "claude", "--project", "app", "--dry-run"], { PATH: "/usr/bin:/bin" });
    expect(dry.code, dry.err).toBe(0);
    expect(dry.err).toContain('dry run, nothing is changed: would make the credential "claude-app" (agent, project app)');
    expect(dry.out).toMatch(/^claude mcp add --scope local spool -- \S+ \S+ mcp --project \S+ --credential claude-app --home \S+ --server ws:\/\/\S+\n$/);
    expect(await principals()).toEqual([]);
    expect(existsSync(credentials())).toBe(false);
    expect(ran()).toEqual([]);
  }, 60_000);

  it("a name another credential holds is refused unless it is this client's (agent, this project): nothing of it changes", async () => {
    const admin = await ts.client();
    const { token } = await admin.call("token/create", { name: "claude-app", role: "person", projects: ["app"] });
    admin.close();
    const refused = await spool(["mcp", "add", "claude", "--project", "app"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('a credential named "claude-app" exists for something else (person, projects app): --name picks another name');
    expect(await whoIs(token)).toMatchObject({ name: "claude-app", role: "person" });
    expect(ran()).toEqual([]);
    // --name: another principal, this client's.
    const named = await spool(["mcp", "add", "claude", "--project", "app", "--name", "claude-laptop"]);
    expect(named.code, named.err).toBe(0);
    expect(await whoIs(readFileSync(join(credentials(), "claude-laptop"), "utf8").trim())).toEqual({ name: "claude-laptop", role: "agent", projects: ["app"] });
    const admin2 = await ts.client();
    await admin2.call("token/revoke", { name: "claude-app" });
    await admin2.call("token/revoke", { name: "claude-laptop" });
    admin2.close();
  }, 60_000);

  it("a client whose command fails leaves no credential behind", async () => {
    const failing = tempDir("spool-add-failing-");
    writeFileSync(join(failing, "codex"), "#!/bin/sh\necho 'codex: config.toml is not writable' >&2\nexit 3\n");
    chmodSync(join(failing, "codex"), 0o755);
    const result = await spool(["mcp", "add", "codex", "--project", "app"], { PATH: `${failing}:${process.env.PATH}` });
    expect(result.code).toBe(1);
    expect(result.err).toContain("codex: config.toml is not writable");
    expect(result.err).toContain('codex exited 3: the credential "codex-app" made for it is revoked again');
    expect((await principals()).map((p) => p.name)).not.toContain("codex-app");
    expect(existsSync(join(credentials(), "codex-app"))).toBe(false);
  }, 60_000);

  it("made, reused, rotated: the home's copy is reused while it works; --rotate and --expires make a new one and the old one dies", async () => {
    const made = await spool(["mcp", "add", "codex", "--project", "app"]);
    expect(made.code, made.err).toBe(0);
    const first = readFileSync(join(credentials(), "codex-app"), "utf8").trim();
    expect(await whoIs(first)).toEqual({ name: "codex-app", role: "agent", projects: ["app"] });
    const reused = await spool(["mcp", "add", "codex", "--project", "app"]);
    expect(reused.err).toContain('reusing the credential "codex-app"');
    expect(readFileSync(join(credentials(), "codex-app"), "utf8").trim()).toBe(first);
    const rotated = await spool(["mcp", "add", "codex", "--project", "app", "--rotate", "--expires", "2h"]);
    expect(rotated.code, rotated.err).toBe(0);
    expect(rotated.err).toContain('replaced the credential "codex-app" (agent, project app, until ');
    const second = readFileSync(join(credentials(), "codex-app"), "utf8").trim();
    expect(second).not.toBe(first);
    await expect(whoIs(first)).rejects.toThrow();
    const listed = (await principals()).find((p) => p.name === "codex-app")!;
    expect(listed.expiresAt).toBeGreaterThan(Date.now() + 60 * 60_000);
    // Revoked by hand: the next run makes a new one in its place.
    const admin = await ts.client();
    await admin.call("token/revoke", { name: "codex-app" });
    admin.close();
    const again = await spool(["mcp", "add", "codex", "--project", "app"]);
    expect(again.err).toContain('made the credential "codex-app"');
    expect(await whoIs(readFileSync(join(credentials(), "codex-app"), "utf8").trim())).toMatchObject({ name: "codex-app" });
  }, 90_000);

  it("by URL, the address is the server's real one when the command came by the home's socket and the settings name another port", async () => {
    // The settings this command reads name no port (the default, 7420); the server listens on the one the system gave.
    expect(ts.server.port).not.toBe(7420);
    const printed = await spool(["mcp", "add", "claude", "--project", "app", "--transport", "http", "--print", "--name", "by-socket"], { SPOOL_SERVER: "" });
    expect(printed.code, printed.err).toBe(0);
    expect(printed.out).toContain(`spool 'http://127.0.0.1:${ts.server.port}/mcp?project=app'`);
  }, 60_000);

  it("--print runs nothing and prints the line; other clients get the entry to paste, by URL with an agent's token", async () => {
    const before = ran().length;
    const printed = await spool(["mcp", "add", "claude", "--project", "app", "--transport", "http", "--print"]);
    expect(printed.code, printed.err).toBe(0);
    const token = /Bearer (spool_\S+)'/.exec(printed.out)![1]!;
    expect(printed.out).toContain(`claude mcp add --scope local --transport http spool 'http://127.0.0.1:${ts.server.port}/mcp?project=app'`);
    expect(await whoIs(token)).toEqual({ name: "claude-app-http", role: "agent", projects: ["app"] });
    expect(ran().length).toBe(before);
    const cursor = await spool([
      "mcp",
      "add",
      "cursor",
      "--project",
      "app",
      "--transport",
      "http",
      "--url",
      "https://spool.example.com/base/",
      "--mode",
      "ask",
    ]);
    expect(cursor.code, cursor.err).toBe(0);
    const entry = (JSON.parse(cursor.out) as { mcpServers: { spool: { type: string; url: string; headers: { Authorization: string } } } }).mcpServers.spool;
    expect(entry.type).toBe("http");
    expect(entry.url).toBe("https://spool.example.com/base/mcp?project=app&mode=ask");
    expect(await whoIs(entry.headers.Authorization.replace("Bearer ", ""))).toEqual({ name: "cursor-app-http", role: "agent", projects: ["app"] });
    const stdio = await spool(["mcp", "add", "cursor", "--project", "app", "--runner", "box"]);
    const args = (JSON.parse(stdio.out) as { mcpServers: { spool: { args: string[] } } }).mcpServers.spool.args;
    expect(args.slice(args.indexOf("mcp"))).toEqual([
      "mcp",
      "--project",
      ts.root,
      "--credential",
      "cursor-app",
      "--runner",
      "box",
      "--home",
      ts.home,
      "--server",
      ts.server.url,
    ]);
    expect(stdio.out).not.toMatch(/spool_[0-9a-f]{16}_/);
    // ACP by URL: the /acp address and the header; a person's credential only when asked for.
    const acp = await spool(["acp", "add", "tablet", "--project", "app", "--transport", "http", "--role", "person"]);
    expect(acp.out).toMatch(new RegExp(`^URL: +http://127\\.0\\.0\\.1:${ts.server.port}/acp`));
    expect(await whoIs(/Bearer (\S+)/.exec(acp.out)![1]!)).toEqual({ name: "tablet-app-http", role: "person", projects: ["app"] });
  }, 90_000);

  it("a revoked client credential: spool mcp says the server refuses it, and starts no other server", async () => {
    const made = await spool(["mcp", "add", "inspector", "--project", "app"]);
    expect(made.code, made.err).toBe(0);
    const admin = await ts.client();
    await admin.call("token/revoke", { name: "inspector-app" });
    admin.close();
    // The home's own server, by its socket (no --server): what an editor's spool mcp finds.
    const client = new Client({ name: "revoked-client", version: "1" }, { capabilities: {} });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [SPOOL_BIN, "mcp", "--credential", "inspector-app", "--project", ts.root],
        env: { ...(env as Record<string, string>), SPOOL_SERVER: "" },
        stderr: "pipe",
      }),
    );
    try {
      const result = (await client.callTool({ name: "run_command", arguments: { command: "echo no" } })) as CallToolResult;
      expect(result.isError).toBe(true);
      expect(JSON.stringify(result.content)).toContain(`the Spool server of ${ts.home} refuses the credential \\"inspector-app\\"`);
    } finally {
      await client.close();
    }
    expect(existsSync(join(ts.home, "serve.log"))).toBe(false);
  }, 120_000);

  it("spool mcp and spool acp --credential: a name the home does not hold is exit 3 and starts nothing; a path or a second credential is a usage error", async () => {
    const empty = tempDir("spool-add-empty-home-");
    for (const command of ["mcp", "acp"]) {
      const missing = await runCliProcess([command, "--credential", "nobody"], { ...env, SPOOL_HOME: empty, SPOOL_SERVER: "" }, cwd, 30_000);
      expect(missing.code, missing.err).toBe(3);
      expect(missing.err).toContain(`the home ${empty} holds no credential "nobody"`);
      expect(missing.err).toContain(`spool ${command} add`);
      // No server was started for it, and nothing fell back to the home's token file.
      expect(existsSync(join(empty, "serve.log"))).toBe(false);
      expect(existsSync(join(empty, "token"))).toBe(false);
      expect((await spool([command, "--credential", "../token"])).code).toBe(2);
      const both = await spool([command, "--credential", "x", "--token-file", join(ts.home, "token")]);
      expect(both.code).toBe(2);
      expect(both.err).toContain("--credential and --token-file name two credentials");
    }
  }, 60_000);
});
