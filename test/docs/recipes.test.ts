import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { SessionUpdate } from "@agentclientprotocol/sdk";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installTool, toolPaths } from "../../scripts/test-tools.mjs";
import { SpoolClient, SpoolRpcError } from "../../src/client/spool-client.js";
import { type AcpEditor, editorOn, initialize } from "../acp/harness.js";
import { editorByUrl } from "../acp/url-harness.js";
import { infraRequired } from "../helpers/infra.js";
import { freePort, type ServeProcess, SPOOL_BIN, spawnServe, spawnSpoolChild } from "../helpers/process.js";
import { eventually, tempDir } from "../helpers/server.js";

/*
 * Least power in every recipe: the README's and docs' recipes that connect Claude Code, Codex CLI, the MCP Inspector,
 * an MCP client by URL (/mcp), an ACP editor (spool acp) and an ACP client by URL (/acp) are run as written, by `sh`,
 * in a home of their own (HOME, so ~/.spool is the Spool home and ~/.claude.json Claude Code's), against a real
 * `spool serve`. `claude` and `codex` are stand-ins that record their argv and write their configuration as the real
 * ones do (test/fixtures/clients); `npx @modelcontextprotocol/inspector` is the real Inspector from the test cache
 * (scripts/test-tools.mjs). After each recipe: no file under the home (the clients' configurations, the Spool home
 * but its own token file, the argv log the stand-ins keep) and nothing the recipe printed holds the home's admin
 * token; the credential the client was given is an agent's, scoped to the project, and the client works with it
 * (its commands proposed under that name, decided by a person elsewhere). And a stolen one decides nothing.
 */

const root = fileURLToPath(new URL("../..", import.meta.url));
const read = (file: string) => readFileSync(join(root, file), "utf8");

/** The ```sh TAG block of a file (or another language's). */
function block(file: string, tag: string, lang = "sh"): string {
  const found = new RegExp(`\`\`\`${lang} ${tag}\\n([\\s\\S]*?)\`\`\``).exec(read(file));
  if (!found) throw new Error(`${file} has no \`\`\`${lang} ${tag} block`);
  return found[1]!;
}

/** The plain ``` block after the ```sh TAG block of a file: what that command prints, as the doc shows it. */
function shownAfter(file: string, tag: string): string {
  const text = read(file);
  const at = text.indexOf(`\`\`\`sh ${tag}\n`);
  const end = text.indexOf("```", at + 6 + tag.length);
  const found = /```\n([\s\S]*?)```/.exec(text.slice(end + 3));
  if (at === -1 || !found) throw new Error(`${file} shows nothing after its \`\`\`sh ${tag} block`);
  return found[1]!;
}

const TOKEN = /spool_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/g;

type McpEntry = { type?: string; command?: string; args?: string[]; url?: string; headers?: Record<string, string> };

describe("the recipes that connect clients, run as written: no admin token anywhere, an agent's credential for the project", () => {
  let home: string;
  let spoolHome: string;
  let logs: string;
  let bin: string;
  let port: number;
  let server: ServeProcess;
  let admin: string;
  let alice: SpoolClient;
  let rootClient: SpoolClient;
  let env: NodeJS.ProcessEnv;
  let inspector: { node: string; cli: string } | { skip: string };
  const printed: string[] = [];
  const appRoot = () => join(home, "src", "app");

  /** Runs a recipe's lines in `sh -e`, in the home (as a person at a prompt): its exit code and output. */
  function sh(script: string, cwd = home, timeoutMs = 120_000): Promise<{ code: number | null; out: string; err: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn("sh", ["-e", "-c", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d;
      });
      child.stderr.on("data", (d: Buffer) => {
        err += d;
      });
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`sh -c ${script} still ran after ${timeoutMs} ms:\n${out}\n${err}`));
      }, timeoutMs);
      child.once("close", (code) => {
        clearTimeout(timer);
        printed.push(out, err);
        resolve({ code, out, err });
      });
    });
  }

  /** Every file under `dir`, but the home's own token file. */
  function files(dir: string): string[] {
    const found: string[] = [];
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (!stat) continue;
      if (stat.isDirectory()) found.push(...files(path));
      else if (stat.isFile() && path !== join(spoolHome, "token")) found.push(path);
    }
    return found;
  }

  /** A file's bytes, or none when it went between the listing and the read (a live command's record, removed as it ends). */
  function readIfThere(file: string): Buffer {
    try {
      return readFileSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return Buffer.alloc(0);
      throw error;
    }
  }

  /** The home's admin token is in no file written (the home, the argv log) and in nothing any recipe printed. */
  function noAdminToken(): void {
    for (const file of [...files(home), ...files(logs)]) expect(readIfThere(file).includes(admin), `${file} holds the admin token`).toBe(false);
    for (const text of printed) expect(text.includes(admin), "a recipe printed the admin token").toBe(false);
  }

  /** Who `token` is, as the server says at initialize in `project`: its principal, or the refusal. */
  async function principalOf(token: string, project = "app") {
    const client = await SpoolClient.connect(server.url, { token });
    try {
      return (await client.initialize(project, { create: false, client: { name: "recipes-test", version: "1" } })).principal;
    } finally {
      client.close();
    }
  }

  /** The token of a credential the home keeps for a client (`--credential NAME`). */
  const kept = (name: string) => readFileSync(join(spoolHome, "credentials", name), "utf8").trim();

  /** `args`' value after `flag`. */
  const valueAfter = (args: readonly string[], flag: string) => args[args.indexOf(flag) + 1];

  /** Accepts, as alice (a person), the next proposal of `command` in the project; resolves with who proposed it (the trail). */
  async function approveNext(command: string): Promise<string> {
    const proposal = await alice.next("run/proposal", (p) => p.command === command, 90_000);
    await alice.call("run/resolve", { run: proposal.run, path: proposal.path, decision: "accept" });
    // The trail is written beside the proposal, not before it is announced.
    let by = "";
    await eventually(
      async () => {
        const { events } = await rootClient.call("audit/list", { project: "app", since: proposal.createdAt - 60_000 });
        by = events.find((e) => e.action === "proposal" && e.run === proposal.run && e.path === proposal.path)?.principal ?? "";
        return by !== "";
      },
      20_000,
      `the trail's proposal of ${command}`,
    );
    return by;
  }

  /** An MCP client (the SDK's) on an entry of a client's configuration; calls run_command once, approved by alice. */
  async function mcpClientOn(entry: McpEntry, cwd: string, command: string, headers: Record<string, string> = {}): Promise<{ text: string; by: string }> {
    const client = new Client({ name: "recipe-client", version: "1.0.0" }, { capabilities: {} });
    const transport =
      entry.url !== undefined
        ? new StreamableHTTPClientTransport(new URL(entry.url), { requestInit: { headers: { ...entry.headers, ...headers } } })
        : new StdioClientTransport({ command: entry.command!, args: entry.args!, cwd, env: env as Record<string, string>, stderr: "pipe" });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain("run_command");
      const by = approveNext(command);
      const result = (await client.callTool({ name: "run_command", arguments: { command } }, undefined, { timeout: 120_000 })) as CallToolResult;
      return { text: result.content.map((c) => (c.type === "text" ? c.text : "")).join(""), by: await by };
    } finally {
      await client.close();
    }
  }

  beforeAll(async () => {
    inspector = await installTool("inspector").then((failed) => (failed ? { skip: failed } : (toolPaths("inspector") as { node: string; cli: string })));
    home = tempDir("spool-recipes-home-");
    logs = tempDir("spool-recipes-logs-");
    bin = tempDir("spool-recipes-bin-");
    spoolHome = join(home, ".spool");
    mkdirSync(spoolHome, { mode: 0o700 });
    port = await freePort();
    // The docs' address is 127.0.0.1:7420; this server's port is set where every command reads it.
    writeFileSync(join(spoolHome, "config.json"), JSON.stringify({ port }));
    // On PATH: spool itself, the stand-ins, and npx for the Inspector.
    symlinkSync(SPOOL_BIN, join(bin, "spool"));
    for (const name of ["claude", "codex"]) {
      writeFileSync(join(bin, name), `#!/bin/sh\nexec "${process.execPath}" "${join(root, "test", "fixtures", "clients", `${name}.mjs`)}" "$@"\n`);
      chmodSync(join(bin, name), 0o755);
    }
    if (!("skip" in inspector)) {
      writeFileSync(
        join(bin, "npx"),
        `#!/bin/sh\n[ "$1" = @modelcontextprotocol/inspector ] || { echo "stand-in npx: only the MCP Inspector" >&2; exit 1; }\nshift\nexec "${inspector.node}" "${inspector.cli}" "$@"\n`,
      );
      chmodSync(join(bin, "npx"), 0o755);
    }
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SPOOL_|CLAUDE_|CODEX_)/.test(k) || k.startsWith("SPOOL_TEST")));
    Object.assign(env, { HOME: home, PATH: `${bin}:${process.env.PATH}`, CLIENT_ARGV_LOG: join(logs, "argv.log"), SPOOL_LOG: "warn", NO_COLOR: "1" });
    server = await spawnServe(["--home", spoolHome], { ...env, SPOOL_MODEL_FAST: "demo/builtin" });
    admin = readFileSync(join(spoolHome, "token"), "utf8").trim();
    for (const project of ["app", "my-app"]) {
      mkdirSync(join(home, "src", project, ".git"), { recursive: true });
      expect((await sh("spool init", join(home, "src", project))).code).toBe(0);
    }
    // The trail is read with the home's token, by the test only: no recipe is given it.
    rootClient = await SpoolClient.connect(server.url, { token: admin });
    const { token } = await rootClient.call("token/create", { name: "alice", role: "person", projects: ["app"] });
    alice = await SpoolClient.connect(server.url, { token });
    await alice.initialize("app", { create: false, client: { name: "alice's terminal", version: "1" } });
  }, 180_000);
  afterAll(async () => {
    alice?.close();
    rootClient?.close();
    await server?.stop();
  });

  it("Claude Code (docs/mcp.md): `claude mcp add` with the name of a credential the home keeps; Claude Code's stdio entry runs commands as claude-app", async () => {
    const recipe = block("docs/mcp.md", "mcp-add-claude");
    const ran = await sh(recipe);
    expect(ran.code, ran.err).toBe(0);
    // What it ran, as the doc says (the doc's /path/to/app is the project's root).
    const calls = readFileSync(join(logs, "argv.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { program: string; cwd: string; argv: string[] });
    const add = calls.filter((c) => c.program === "claude" && c.argv[1] === "add").at(-1)!;
    expect(add.cwd).toBe(appRoot());
    expect(["claude", ...add.argv].join(" ")).toBe(`claude mcp add --scope local spool -- spool mcp --project ${appRoot()} --credential claude-app`);
    expect(read("docs/mcp.md").replace(/\s+/g, " ")).toContain(
      "`claude mcp add --scope local spool -- spool mcp --project /path/to/app --credential claude-app`",
    );
    expect(ran.err).toContain(`made the credential "claude-app" (agent, project app), kept in ${join(spoolHome, "credentials", "claude-app")}`);
    // Claude Code's configuration: the entry names the credential; the token is in the Spool home, 0600.
    const config = JSON.parse(readFileSync(join(home, ".claude.json"), "utf8")) as { projects: Record<string, { mcpServers: Record<string, McpEntry> }> };
    const entry = config.projects[appRoot()]!.mcpServers.spool!;
    expect(entry).toMatchObject({ type: "stdio", command: "spool" });
    expect(readFileSync(join(home, ".claude.json"), "utf8")).not.toMatch(TOKEN);
    expect(statSync(join(spoolHome, "credentials", "claude-app")).mode & 0o777).toBe(0o600);
    expect(statSync(join(spoolHome, "credentials")).mode & 0o777).toBe(0o700);
    expect(await principalOf(kept(valueAfter(entry.args!, "--credential")!))).toEqual({ name: "claude-app", role: "agent", projects: ["app"] });
    // The entry works as Claude Code starts it: its commands are proposals of claude-app, a person accepts them.
    const { text, by } = await mcpClientOn(entry, appRoot(), "echo from-claude");
    expect(text).toContain("from-claude");
    expect(by).toBe("claude-app");
    // Again: the same credential, the entry replaced (the real claude refuses to add over one).
    const again = await sh(recipe);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toContain('reusing the credential "claude-app"');
    expect(again.err).toContain("claude mcp remove --scope local spool");
    noAdminToken();
  }, 240_000);

  it("Codex CLI (docs/mcp.md): `codex mcp add` writes the table the doc shows; its entry runs commands as codex-app", async () => {
    const ran = await sh(block("docs/mcp.md", "mcp-add-codex"));
    expect(ran.code, ran.err).toBe(0);
    const toml = readFileSync(join(home, ".codex", "config.toml"), "utf8");
    const shown = /```toml\n([\s\S]*?)```/.exec(read("docs/mcp.md"))![1]!;
    for (const line of shown.split("\n").filter((l) => /^(\[|command|args)/.test(l))) expect(toml).toContain(line.replace("/path/to/app", appRoot()));
    expect(toml).not.toMatch(TOKEN);
    const args = JSON.parse(/^args = (.*)$/m.exec(toml)![1]!) as string[];
    expect(await principalOf(kept(valueAfter(args, "--credential")!))).toEqual({ name: "codex-app", role: "agent", projects: ["app"] });
    const { text, by } = await mcpClientOn({ command: JSON.parse(/^command = (.*)$/m.exec(toml)![1]!) as string, args }, home, "echo from-codex");
    expect(text).toContain("from-codex");
    expect(by).toBe("codex-app");
    noAdminToken();
  }, 240_000);

  it("the MCP Inspector (docs/mcp.md), over stdio: the line spool mcp add prints lists the tools, and calls run_command as inspector-app", async (context) => {
    if ("skip" in inspector) {
      if (infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${inspector.skip}`);
      return context.skip(inspector.skip);
    }
    const [add, list, ...call] = block("docs/mcp.md", "mcp-add-inspector")
      .replace(/\\\n\s*/g, "")
      .trim()
      .split("\n");
    const made = await sh(add!);
    expect(made.code, made.err).toBe(0);
    // It prints the doc's next line, with the project's root for ~/src/app.
    expect(made.out.trim()).toBe(list!.replace("~/src/app", appRoot()));
    expect(await principalOf(kept("inspector-app"))).toEqual({ name: "inspector-app", role: "agent", projects: ["app"] });
    const listed = await sh(list!);
    expect(listed.code, listed.err).toBe(0);
    expect((JSON.parse(listed.out) as { tools: { name: string }[] }).tools.map((t) => t.name)).toContain("run_command");
    const by = approveNext("echo hi");
    const called = await sh(call.join("\n"));
    expect(called.code, called.err).toBe(0);
    expect(called.out).toContain("hi");
    expect(called.out).toContain("exit_code: 0");
    expect(await by).toBe("inspector-app");
    noAdminToken();
  }, 300_000);

  it("an MCP client by URL (/mcp, docs/mcp.md): Claude Code holds an agent's token for app alone, replaced when the line runs again", async () => {
    const recipe = block("docs/mcp.md", "mcp-add-claude-http");
    const ran = await sh(recipe);
    expect(ran.code, ran.err).toBe(0);
    // What it printed leaves the token out; what Claude Code keeps is the credential.
    expect(ran.err).toContain("--header 'Authorization: Bearer <the token of claude-app-http>'");
    expect(ran.out + ran.err).not.toMatch(TOKEN);
    const config = () => JSON.parse(readFileSync(join(home, ".claude.json"), "utf8")) as { projects: Record<string, { mcpServers: Record<string, McpEntry> }> };
    const entry = config().projects[appRoot()]!.mcpServers.spool!;
    expect(entry).toMatchObject({ type: "http", url: `http://127.0.0.1:${port}/mcp?project=app` });
    const token = /^Bearer (\S+)$/.exec(entry.headers!.Authorization!)![1]!;
    expect(await principalOf(token)).toEqual({ name: "claude-app-http", role: "agent", projects: ["app"] });
    // The doc's entry for any other client is the same shape.
    const shown = (JSON.parse(block("docs/mcp.md", "mcp-http", "json")) as { mcpServers: { spool: McpEntry } }).mcpServers.spool;
    expect({
      ...shown,
      url: shown.url!.replace("7420", String(port)),
      headers: { Authorization: shown.headers!.Authorization!.replace("AGENT-TOKEN", token) },
    }).toEqual({
      type: "http",
      url: entry.url,
      headers: entry.headers,
    });
    const { text, by } = await mcpClientOn(entry, home, "echo by-url");
    expect(text).toContain("by-url");
    expect(by).toBe("claude-app-http");
    // Again: a new token in Claude Code's configuration, the old one dead.
    const again = await sh(recipe);
    expect(again.code, again.err).toBe(0);
    const renewed = /^Bearer (\S+)$/.exec(config().projects[appRoot()]!.mcpServers.spool!.headers!.Authorization!)![1]!;
    expect(renewed).not.toBe(token);
    await expect(principalOf(token)).rejects.toThrow();
    expect(await principalOf(renewed)).toEqual({ name: "claude-app-http", role: "agent", projects: ["app"] });
    noAdminToken();
  }, 240_000);

  it("the MCP Inspector by URL (docs/mcp.md): spool mcp add prints the doc's line with an agent's token, and that line lists the tools", async (context) => {
    if ("skip" in inspector) {
      if (infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${inspector.skip}`);
      return context.skip(inspector.skip);
    }
    const made = await sh(block("docs/mcp.md", "mcp-add-inspector-http"));
    expect(made.code, made.err).toBe(0);
    const line = made.out.trim();
    const token = [...line.matchAll(TOKEN)].map((m) => m[0]);
    expect(token).toHaveLength(1);
    expect(line.replace(token[0]!, "spool_…").replace(`127.0.0.1:${port}`, "127.0.0.1:7420")).toBe(shownAfter("docs/mcp.md", "mcp-add-inspector-http").trim());
    expect(await principalOf(token[0]!)).toEqual({ name: "inspector-app-http", role: "agent", projects: ["app"] });
    const listed = await sh(line);
    expect(listed.code, listed.err).toBe(0);
    expect((JSON.parse(listed.out) as { tools: { name: string }[] }).tools.map((t) => t.name)).toContain("run_command");
    noAdminToken();
  }, 240_000);

  it("an ACP editor (docs/acp.md): the Zed entry spool acp add prints runs spool acp as zed-app; it prompts, is never asked, and stops what it started", async () => {
    const ran = await sh(block("docs/acp.md", "acp-add-zed"));
    expect(ran.code, ran.err).toBe(0);
    const printedEntry = (JSON.parse(ran.out) as { agent_servers: { Spool: { type: string; command: string; args: string[] } } }).agent_servers.Spool;
    const section = read("docs/acp.md").slice(read("docs/acp.md").indexOf("## Editors: Spool as an ACP agent"));
    const shown = (JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!) as { agent_servers: { Spool: { type: string; command: string; args: string[] } } })
      .agent_servers.Spool;
    expect(printedEntry).toEqual({ type: shown.type, command: shown.command, args: shown.args });
    expect(await principalOf(kept(valueAfter(printedEntry.args, "--credential")!))).toEqual({ name: "zed-app", role: "agent", projects: ["app"] });
    // The editor runs the entry: `spool` from PATH, in its environment.
    const acp = spawnSpoolChild(printedEntry.args, env, { readStdout: false, cwd: appRoot() });
    const { ndJsonStream } = await import("@agentclientprotocol/sdk");
    const { Readable, Writable } = await import("node:stream");
    const editor: AcpEditor = editorOn(
      ndJsonStream(Writable.toWeb(acp.child.stdin!) as WritableStream<Uint8Array>, Readable.toWeb(acp.child.stdout!) as ReadableStream<Uint8Array>),
      () => acp.stderr(),
    );
    try {
      await initialize(editor, { name: "Zed", terminal: false });
      await zedLikeSession(editor);
    } finally {
      await acp.stop();
    }
    noAdminToken();
  }, 240_000);

  /** A session in app: a prompt whose command a person approves elsewhere (the editor is shown it, never asked), then one it cancels. */
  async function zedLikeSession(editor: AcpEditor): Promise<void> {
    const { sessionId } = await editor.connection.agent.request("session/new", { cwd: appRoot(), mcpServers: [] });
    const prompt = (text: string) => editor.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text }] });
    const first = prompt("run `echo from-the-editor`");
    expect(await approveNext("echo from-the-editor")).toMatch(/^model/);
    expect((await first).stopReason).toBe("end_turn");
    expect(editor.events.some((e) => e.kind === "permission")).toBe(false);
    const output = editor
      .updates(sessionId)
      .map((u) => JSON.stringify(u))
      .join("\n");
    expect(output).toContain("from-the-editor");
    // Stopping its own turn: run/abort of a run it created, which an agent may.
    const second = prompt("run `sleep 300`");
    await approveNext("sleep 300");
    await editor
      .update((u: SessionUpdate) => u.sessionUpdate === "tool_call_update" && (u as { status?: string }).status === "in_progress", 0, 30_000)
      .catch(() => undefined);
    await editor.connection.agent.notify("session/cancel", { sessionId });
    expect((await second).stopReason).toBe("cancelled");
    const run = sessionId.split("/")[1]!;
    await eventually(async () => (await alice.call("run/get", { run })).run.status === 499, 20_000, "the run aborted");
  }

  it("an ACP client by URL (/acp, docs/acp.md): the URL and header spool acp add prints, an agent's token for app; the client prompts and is never asked", async () => {
    const ran = await sh(block("docs/acp.md", "acp-add-url"));
    expect(ran.code, ran.err).toBe(0);
    const token = [...ran.out.matchAll(TOKEN)].map((m) => m[0]);
    expect(token).toHaveLength(1);
    expect(ran.out.replace(token[0]!, "spool_…").replaceAll(`127.0.0.1:${port}`, "127.0.0.1:7420")).toBe(shownAfter("docs/acp.md", "acp-add-url"));
    expect(await principalOf(token[0]!)).toEqual({ name: "phone-app-http", role: "agent", projects: ["app"] });
    const editor = editorByUrl(port, "http", token[0]!);
    try {
      await initialize(editor, { name: "phone", terminal: false });
      await zedLikeSession(editor);
    } finally {
      void editor.connection.close?.();
    }
    noAdminToken();
  }, 240_000);

  it("the README's lines, from the project's directory: Claude Code, Codex CLI and Zed each get an agent's credential for my-app", async () => {
    const ran = await sh(block("README.md", "readme-clients"));
    expect(ran.code, ran.err).toBe(0);
    const myApp = join(home, "src", "my-app");
    const claude = (JSON.parse(readFileSync(join(home, ".claude.json"), "utf8")) as { projects: Record<string, { mcpServers: Record<string, McpEntry> }> })
      .projects[myApp]!.mcpServers.spool!;
    const codex = JSON.parse(/^args = (.*)$/m.exec(readFileSync(join(home, ".codex", "config.toml"), "utf8"))![1]!) as string[];
    const zed = (JSON.parse(ran.out) as { agent_servers: { Spool: { args: string[] } } }).agent_servers.Spool.args;
    for (const [args, name] of [
      [claude.args!, "claude-my-app"],
      [codex, "codex-my-app"],
      [zed, "zed-my-app"],
    ] as const) {
      expect(valueAfter(args, "--credential")).toBe(name);
      expect(await principalOf(kept(name), "my-app")).toEqual({ name, role: "agent", projects: ["my-app"] });
    }
    noAdminToken();
  }, 240_000);

  it("a stolen credential decides nothing: with claude-app's, run/resolve and spool approve are FORBIDDEN, a full command stays a proposal", async () => {
    const token = kept("claude-app");
    const thief = await SpoolClient.connect(server.url, { token });
    try {
      await thief.initialize("app", { create: false, client: { name: "thief", version: "1" } });
      const marker = join(appRoot(), "pwned");
      await thief.call("run/create", { alias: "stolen" });
      const proposed = await thief.call("proposal/create", { run: "stolen", tool: "sh", sandbox: "full", command: `touch ${marker}` });
      const refusal = await thief.call("run/resolve", { run: "stolen", path: proposed.path, decision: "accept" }).catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(SpoolRpcError);
      expect((refusal as SpoolRpcError).errorCode).toBe("FORBIDDEN");
      // The CLI with the same token file: refused too, exit 1, naming the role.
      const approve = spawnSpoolChild(["approve", "stolen", proposed.path, "--token-file", join(spoolHome, "credentials", "claude-app")], env, {
        cwd: appRoot(),
      });
      expect((await approve.exitsWithin(60_000)).code, approve.stderr()).toBe(1);
      expect(approve.stderr()).toMatch(/FORBIDDEN|needs the person role/);
      // Nor does it act as more, mint a credential, or reach another project.
      const other = await SpoolClient.connect(server.url, { token });
      await expect(other.initialize("app", { create: false, role: "person" })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
      other.close();
      await expect(thief.call("token/create", { name: "mine", role: "admin" })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
      await expect(principalOf(token, "my-app")).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
      // The full command is still a proposal waiting for a person, and nothing ran.
      const { proposals } = await alice.call("proposal/list", { run: "stolen" });
      expect(proposals.map((p) => p.path)).toEqual([proposed.path]);
      expect(existsSync(marker)).toBe(false);
      await alice.call("run/resolve", { run: "stolen", path: proposed.path, decision: "reject", reason: "not mine" });
    } finally {
      thief.close();
    }
  }, 120_000);
});
