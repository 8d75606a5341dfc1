import { mkdirSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { PROTOCOL_VERSION } from "@agentclientprotocol/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";
import { type AcpEditor, initialize } from "./harness.js";
import { editorByUrl } from "./url-harness.js";

/*
 * /acp's front door on a real `spool serve`: the credential, the page it comes from, the body's size, revocation
 * closing the streams, and the principal's role and scope holding for every ACP call.
 */

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 0,
  method: "initialize",
  params: { protocolVersion: PROTOCOL_VERSION, clientCapabilities: {}, clientInfo: { name: "raw", version: "1" } },
});

describe("/acp's front door", () => {
  let home: string;
  let roots: { alpha: string; beta: string };
  let port: number;
  let server: ServeProcess;
  let token: string;
  const editors: AcpEditor[] = [];
  const spools: SpoolClient[] = [];

  const url = () => `http://127.0.0.1:${port}/acp`;
  const post = (headers: Record<string, string>, body = INITIALIZE, at = url()) =>
    fetch(at, { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", ...headers }, body });
  const upgrade = (headers: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/acp`, { headers });
      ws.once("unexpected-response", (_request, response) => {
        resolve(response.statusCode ?? 0);
        ws.terminate();
      });
      ws.once("open", () => {
        ws.close();
        resolve(101);
      });
      ws.once("error", (error) => (error.message.includes("Unexpected server response") ? undefined : reject(error)));
    });
  const admin = async () => {
    const c = await SpoolClient.connect(server.url, { token });
    spools.push(c);
    return c;
  };
  const credential = async (name: string, role: "viewer" | "person", projects?: string[]) =>
    (await (await admin()).call("token/create", { name, role, ...(projects ? { projects } : {}) })).token;
  const editor = (transport: "http" | "ws", credential = token) => {
    const e = editorByUrl(port, transport, credential);
    editors.push(e);
    return e;
  };

  beforeAll(async () => {
    home = tempDir("spool-acp-door-home-");
    const base = tempDir("spool-acp-door-");
    roots = { alpha: join(base, "alpha"), beta: join(base, "beta") };
    for (const root of Object.values(roots)) mkdirSync(join(root, ".git"), { recursive: true });
    port = await freePort();
    server = await spawnServe(["--port", String(port), "--home", home, "--demo-model"]);
    token = readFileSync(join(home, "token"), "utf8").trim();
    // Only an admin creates a project; the credentials below join them.
    for (const root of Object.values(roots)) await (await admin()).initialize(undefined, { root });
  }, 60_000);
  afterEach(() => {
    for (const e of editors.splice(0)) void e.connection.close?.();
    for (const c of spools.splice(0)) c.close();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("refuses no credential or a wrong one (401), one in the URL (401), a foreign Origin or Host (403), too big a body (413), a runner (403)", async () => {
    expect((await post({})).status).toBe(401);
    expect((await post({ Authorization: "Bearer wrong" })).status).toBe(401);
    expect((await post({}, INITIALIZE, `${url()}?token=${token}`)).status).toBe(401);
    const auth = { Authorization: `Bearer ${token}` };
    expect((await post({ ...auth, Origin: "http://evil.example.com" })).status).toBe(403);
    // fetch sets Host itself: a DNS-rebinding page's request, by hand.
    const rebinding = await new Promise<number>((resolve, reject) =>
      httpRequest(url(), { method: "POST", headers: { ...auth, Host: "evil.example.com", "Content-Type": "application/json" } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      })
        .once("error", reject)
        .end(INITIALIZE),
    );
    expect(rebinding).toBe(403);
    expect((await post(auth, JSON.stringify({ pad: "x".repeat(2 * 1024 * 1024) }))).status).toBe(413);
    const runner = (await (await admin()).call("token/create", { name: "builder", role: "runner" })).token;
    expect((await post({ Authorization: `Bearer ${runner}` })).status).toBe(403);
    expect(await upgrade({})).toBe(401);
    expect(await upgrade({ ...auth, Origin: "http://evil.example.com" })).toBe(403);
    expect(await upgrade(auth)).toBe(101);
    // The server's own page may: its Origin is the server's.
    const own = await post({ ...auth, Origin: `http://127.0.0.1:${port}` });
    expect(own.status).toBe(200);
    expect(own.headers.get("acp-connection-id")).toBeTruthy();
    // Another credential does not reach that connection.
    const other = await credential("mallory", "person");
    const stolen = await fetch(url(), {
      method: "GET",
      headers: { Accept: "text/event-stream", Authorization: `Bearer ${other}`, "Acp-Connection-Id": own.headers.get("acp-connection-id")! },
    });
    expect(stolen.status).toBe(404);
  }, 60_000);

  it("a revoked credential's SSE stream and WebSocket close within 1 s", async () => {
    const person = await credential("revoked-person", "person");
    const auth = { Authorization: `Bearer ${person}` };
    const opened = await post(auth);
    expect(opened.status).toBe(200);
    const sse = await fetch(url(), { headers: { ...auth, Accept: "text/event-stream", "Acp-Connection-Id": opened.headers.get("acp-connection-id")! } });
    expect(sse.status).toBe(200);
    const reader = sse.body!.getReader();
    const sseEnded = (async () => {
      try {
        while (!(await reader.read()).done);
      } catch {
        // cut off: ended too
      }
      return performance.now();
    })();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/acp`, { headers: auth });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const wsClosed = new Promise<{ at: number; code: number }>((resolve) => ws.once("close", (code) => resolve({ at: performance.now(), code })));
    const before = performance.now();
    await (await admin()).call("token/revoke", { name: "revoked-person" });
    const after = performance.now();
    const [sseAt, wsEnd] = await Promise.all([sseEnded, wsClosed]);
    expect(sseAt - before).toBeLessThan(1000 + (after - before));
    expect(wsEnd.at - before).toBeLessThan(1000 + (after - before));
    expect(wsEnd.code).toBe(1008);
    // And it opens nothing any more.
    expect((await post(auth)).status).toBe(401);
  }, 60_000);

  it("a viewer following a session is shown the proposal's facts but never asked: only a person decides", async () => {
    const viewer = await credential("watcher", "viewer");
    const a = editor("http");
    const v = editor("ws", viewer);
    await initialize(a, { name: "laptop", terminal: true });
    await initialize(v, { name: "wall-screen", terminal: true });
    const { sessionId } = await a.connection.agent.request("session/new", { cwd: roots.alpha, mcpServers: [] });
    await v.connection.agent.request("session/resume", { sessionId, cwd: roots.alpha });
    const turn = a.connection.agent.request("session/prompt", { sessionId, prompt: [{ type: "text", text: "run `echo seen`" }] });
    const ask = await a.permission();
    const shown = await v.update((u) => u.sessionUpdate === "tool_call_update" && JSON.stringify(u.content ?? []).includes("Waiting for a person to decide"));
    expect(JSON.stringify(shown)).toContain("echo seen");
    ask.answer({ outcome: { outcome: "selected", optionId: "allow_once" } });
    expect(await turn).toEqual({ stopReason: "end_turn" });
    await v.update((u) => u.sessionUpdate === "tool_call_update" && u.status === "completed");
    expect(v.events.some((e) => e.kind === "permission")).toBe(false);
    // Nor can it start work of its own.
    await expect(v.connection.agent.request("session/new", { cwd: roots.alpha, mcpServers: [] })).rejects.toThrow();
  }, 60_000);

  it("a credential scoped to one project opens sessions there and nowhere else", async () => {
    const scoped = await credential("alpha-only", "person", ["alpha"]);
    const e = editor("http", scoped);
    await initialize(e, { name: "phone" });
    const { sessionId } = await e.connection.agent.request("session/new", { cwd: roots.alpha, mcpServers: [] });
    expect(sessionId).toMatch(/^alpha\//);
    await expect(e.connection.agent.request("session/new", { cwd: roots.beta, mcpServers: [] })).rejects.toThrow();
    // A session of the other project, by id: not found for it.
    const a = editor("ws");
    await initialize(a, { name: "laptop" });
    const other = await a.connection.agent.request("session/new", { cwd: roots.beta, mcpServers: [] });
    await expect(e.connection.agent.request("session/load", { sessionId: other.sessionId, cwd: roots.beta, mcpServers: [] })).rejects.toThrow();
    const listed = await e.connection.agent.request("session/list", {});
    expect(listed.sessions.every((s) => s.sessionId.startsWith("alpha/"))).toBe(true);
  }, 60_000);
});
