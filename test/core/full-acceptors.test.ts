import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { readConfigFile } from "../../src/config/file.js";
import { factsText, proposalFacts } from "../../src/protocol/proposal-facts.js";
import { ENTRY } from "../../src/protocol/status.js";
import { initialize, spawnAcp } from "../acp/harness.js";
import { ended } from "../helpers/live-output.js";
import { freePort, runCli, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/**
 * `full` is the machine (SPEC §7 Runners, "Who may accept full"): a command without a sandbox runs as the runner's user,
 * where a home's token opens every project. Only the principals `sandboxFullAcceptors` names may accept one (unscoped
 * admins by default), never a scoped credential, whoever proposed it; every client shows who may before deciding; a
 * refusal is FORBIDDEN naming the rule, and nothing runs or changes. Over a real `spool serve`, its RPC and the CLI.
 */

interface Server {
  serve: ServeProcess;
  home: string;
  root: string;
  admin: SpoolClient;
  token(name: string, role: string, projects?: string[]): Promise<string>;
  /** A client of `token` in project "app". */
  as(token: string): Promise<SpoolClient>;
  stop(): Promise<void>;
}

async function server(config: Record<string, unknown> = {}): Promise<Server> {
  const home = tempDir("spool-full-");
  const root = join(tempDir("spool-full-root-"), "app");
  mkdirSync(join(root, ".git"), { recursive: true });
  writeFileSync(join(home, "config.json"), JSON.stringify(config));
  const serve = await spawnServe(["--port", String(await freePort()), "--home", home]);
  const open: SpoolClient[] = [];
  const admin = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
  open.push(admin);
  await admin.initialize("app", { root });
  await admin.call("run/create", { alias: "r" });
  return {
    serve,
    home,
    root,
    admin,
    token: async (name, role, projects) => (await admin.call("token/create", { name, role: role as "person", ...(projects ? { projects } : {}) })).token,
    as: async (token) => {
      const client = await SpoolClient.connect(serve.url, { token });
      open.push(client);
      await client.initialize("app");
      return client;
    },
    stop: async () => {
      for (const c of open) if (!c.closed) c.close();
      await serve.stop();
    },
  };
}

/** What a refused call threw: its catalogue name and data. */
async function refusal(call: Promise<unknown>): Promise<{ code?: string; message: string; data: Record<string, unknown> }> {
  try {
    await call;
  } catch (error) {
    const e = error as { message: string; data?: Record<string, unknown> & { code?: string } };
    return { code: e.data?.code, message: e.message, data: e.data ?? {} };
  }
  throw new Error("the call was not refused");
}

describe("who may accept a command without a sandbox, by default", () => {
  let s: Server;
  let scopedPerson: string;
  let scopedAdmin: string;
  let marker: (name: string) => string;
  beforeAll(async () => {
    s = await server();
    scopedPerson = await s.token("pat", "person", ["app"]);
    scopedAdmin = await s.token("sam", "admin", ["app"]);
    marker = (name) => join(s.root, name);
  }, 90_000);
  afterAll(async () => await s?.stop());

  it("a project-scoped person's full command, accepted by itself over RPC, is FORBIDDEN naming the rule, does not run, and still waits", async () => {
    const pat = await s.as(scopedPerson);
    const { path } = await pat.call("proposal/create", { run: "r", tool: "sh", command: "touch by-pat", sandbox: "full" });
    const refused = await refusal(pat.call("run/resolve", { run: "r", path, decision: "accept" }));
    expect(refused.code).toBe("FORBIDDEN");
    expect(refused.data).toMatchObject({ rule: "sandboxFullAcceptors", acceptors: ["admin"], held: "person", scope: ["app"] });
    expect(refused.message).toContain("sandboxFullAcceptors");
    expect(refused.message).toContain("never a scoped credential");
    // Nothing changed: the proposal waits, nothing ran.
    expect((await s.admin.call("entry/get", { run: "r", path })).status).toBe(ENTRY.proposed);
    expect(existsSync(marker("by-pat"))).toBe(false);
    // Nor with runner "self", nor as an "always allow", nor as a scoped admin.
    expect((await refusal(pat.call("run/resolve", { run: "r", path, decision: "accept", runner: "self" }))).data.rule).toBe("sandboxFullAcceptors");
    expect((await refusal(pat.call("run/resolve", { run: "r", path, decision: "accept", always: true }))).data.rule).toBe("sandboxFullAcceptors");
    const sam = await s.as(scopedAdmin);
    expect((await refusal(sam.call("run/resolve", { run: "r", path, decision: "accept" }))).data).toMatchObject({
      rule: "sandboxFullAcceptors",
      held: "admin",
    });
    expect((await s.admin.call("entry/get", { run: "r", path })).status).toBe(ENTRY.proposed);
    expect(existsSync(marker("by-pat"))).toBe(false);
  }, 60_000);

  it("every client shows who may accept it, from the one formatter", async () => {
    const pat = await s.as(scopedPerson);
    const { path } = await pat.call("proposal/create", { run: "r", tool: "sh", command: "echo shown", sandbox: "full" });
    const entry = await pat.call("entry/get", { run: "r", path });
    expect(entry.producer?.sandbox).toEqual({ mode: "full", acceptors: ["admin"] });
    expect(factsText(proposalFacts(entry.attributes))).toContain("only an unscoped admin may accept it");
    const { proposals } = await pat.call("proposal/list", {});
    expect(proposals.find((p) => p.path === path)?.producer?.sandbox).toEqual({ mode: "full", acceptors: ["admin"] });
  }, 60_000);

  it("the CLI's approve with the scoped person's credential is refused, saying why, and the command does not run", async () => {
    const pat = await s.as(scopedPerson);
    const { path } = await pat.call("proposal/create", { run: "r", tool: "sh", command: "touch by-cli", sandbox: "full" });
    const tokenFile = join(tempDir("spool-full-cli-"), "token");
    writeFileSync(tokenFile, scopedPerson, { mode: 0o600 });
    const env = { SPOOL_SERVER: s.serve.url, SPOOL_TOKEN_FILE: tokenFile, SPOOL_HOME: tempDir("spool-full-cli-home-"), SPOOL_PROJECT: "app" };
    const approve = await runCli(["approve", "r", path], env, s.root, 30_000);
    expect(approve.code, approve.err).toBe(1);
    expect(approve.err).toContain("sandboxFullAcceptors");
    expect(approve.err).toContain("may not accept this command");
    expect(approve.out).not.toContain("accepted");
    expect((await s.admin.call("entry/get", { run: "r", path })).status).toBe(ENTRY.proposed);
    expect(existsSync(marker("by-cli"))).toBe(false);
  }, 60_000);

  it("an editor over ACP (spool acp with the scoped person's credential) is shown who may accept it, and its Allow is refused, saying why", async () => {
    const pat = await s.as(scopedPerson);
    await pat.call("run/create", { alias: "acp" });
    const { path } = await pat.call("proposal/create", { run: "acp", tool: "sh", command: "touch by-acp", sandbox: "full" });
    const tokenFile = join(tempDir("spool-full-acp-"), "token");
    writeFileSync(tokenFile, scopedPerson, { mode: 0o600 });
    const acp = spawnAcp({ args: ["--server", s.serve.url], env: { SPOOL_TOKEN_FILE: tokenFile, SPOOL_HOME: tempDir("spool-full-acp-home-") } });
    try {
      await initialize(acp, { name: "zed" });
      await acp.connection.agent.request("session/resume", { sessionId: "app/acp", cwd: s.root });
      const ask = await acp.permission(30_000);
      const text = (ask.params.toolCall.content ?? []).map((c) => (c.type === "content" && c.content.type === "text" ? c.content.text : "")).join("\n");
      expect(text).toContain("only an unscoped admin may accept it");
      const from = acp.events.length;
      ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
      const told = await acp.update((u) => u.sessionUpdate === "tool_call_update" && JSON.stringify(u.content ?? []).includes("Not accepted"), from, 30_000);
      expect(JSON.stringify(told)).toContain("sandboxFullAcceptors");
      expect((await s.admin.call("entry/get", { run: "acp", path })).status).toBe(ENTRY.proposed);
      expect(existsSync(marker("by-acp"))).toBe(false);
    } finally {
      await acp.stop("SIGKILL");
    }
  }, 90_000);

  it("an unscoped admin (the home's token) accepts a scoped person's full command, and it runs", async () => {
    const pat = await s.as(scopedPerson);
    const { path } = await pat.call("proposal/create", { run: "r", tool: "sh", command: "touch by-admin", sandbox: "full" });
    const accepted = await s.admin.call("run/resolve", { run: "r", path, decision: "accept" });
    expect(accepted.status).toBe(ENTRY.done);
    const { log } = await ended(s.admin, "r", path, accepted.channels[0]!.path);
    expect(log.producer.exitCode).toBe(0);
    expect(existsSync(marker("by-admin"))).toBe(true);
  }, 60_000);
});

describe("who may accept full, as config.json names them", () => {
  let s: Server;
  let alice: string;
  beforeAll(async () => {
    // Every sh command in full, so that an "always allow" rule may hold one; only alice may accept them.
    s = await server({ sandbox: "full", sandboxFullAcceptors: ["principal:alice"] });
    alice = await s.token("alice", "person");
  }, 90_000);
  afterAll(async () => await s?.stop());

  it("the principal the list names accepts; the home's admin, not on it, is refused", async () => {
    const { path } = await s.admin.call("proposal/create", { run: "r", tool: "sh", command: "echo listed" });
    const entry = await s.admin.call("entry/get", { run: "r", path });
    expect(factsText(proposalFacts(entry.attributes))).toContain("only alice (unscoped) may accept it");
    expect((await refusal(s.admin.call("run/resolve", { run: "r", path, decision: "accept" }))).data).toMatchObject({
      rule: "sandboxFullAcceptors",
      acceptors: ["principal:alice"],
    });
    const a = await s.as(alice);
    expect((await a.call("run/resolve", { run: "r", path, decision: "accept" })).status).toBe(ENTRY.done);
  }, 60_000);

  it("an always-allow rule accepts a full command only while the principal that set it may: after alice is revoked it is asked about", async () => {
    const a = await s.as(alice);
    const first = await a.call("proposal/create", { run: "r", tool: "sh", command: "echo again" });
    const ruled = await a.call("run/resolve", { run: "r", path: first.path, decision: "accept", always: true });
    expect(ruled.rule).toBeTypeOf("number");
    // The rule holds: the same command is accepted by it, as alice.
    const second = await s.admin.call("proposal/create", { run: "r", tool: "sh", command: "echo again" });
    expect((await s.admin.call("entry/get", { run: "r", path: second.path })).status).toBe(ENTRY.done);
    await s.admin.call("token/revoke", { name: "alice" });
    const third = await s.admin.call("proposal/create", { run: "r", tool: "sh", command: "echo again" });
    expect((await s.admin.call("entry/get", { run: "r", path: third.path })).status).toBe(ENTRY.proposed);
  }, 60_000);

  it("a setting that is none is refused, naming it", () => {
    const home = tempDir("spool-full-bad-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ sandboxFullAcceptors: ["root"] }));
    expect(() => readConfigFile(join(home, "config.json"))).toThrow(
      '"sandboxFullAcceptors[0]" must be "admin" (every unscoped admin), "person" (every unscoped person and admin) or "principal:NAME"',
    );
  });
});
