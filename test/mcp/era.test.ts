import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";
import { modern, modernRequest, VERSION } from "./modern-harness.js";

/*
 * Issue 47: which revision a POST to /mcp speaks is the v2 SDK's classifier's decision (src/mcp/stateless/wire.ts), over
 * real HTTP to a `spool serve` subprocess. What it refuses is answered with the SDK's HTTP status, JSON-RPC code,
 * message and data, the request's id echoed when it has one; 2025-11-25 sessions and 2026-07-28 requests are
 * served as before (test/mcp/http.test.ts, test/mcp/modern.test.ts).
 */

interface Raw {
  status: number;
  sessionId: string | null;
  body: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };
}

describe("the era of a POST to /mcp, by the v2 SDK's classifier", () => {
  let home: string;
  let project: string;
  let port: number;
  let server: ServeProcess;
  let token: string;
  const url = () => `http://127.0.0.1:${port}/mcp?root=${encodeURIComponent(project)}`;
  const base = () => ({ "Content-Type": "application/json", Accept: "application/json, text/event-stream", Authorization: `Bearer ${token}` });
  const envelope = {
    "io.modelcontextprotocol/protocolVersion": VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": { name: "era", version: "1" },
  };
  const initialize = (id: number) => ({
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "era", version: "1" } },
  });

  async function post(body: unknown, headers: Record<string, string> = {}): Promise<Raw> {
    const response = await fetch(url(), { method: "POST", headers: { ...base(), ...headers }, body: JSON.stringify(body) });
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    // An SSE answer (a session's): its message with an id (a priming event's data is empty).
    const json = type.startsWith("text/event-stream")
      ? text
          .split("\n")
          .filter((l) => l.startsWith("data:") && l.slice(5).trim() !== "")
          .map((l) => JSON.parse(l.slice(5)) as Raw["body"])
          .find((m) => "id" in m)
      : text
        ? (JSON.parse(text) as Raw["body"])
        : {};
    return { status: response.status, sessionId: response.headers.get("mcp-session-id"), body: json ?? {} };
  }

  /** A live 2025-11-25 session's id. */
  async function session(): Promise<string> {
    const opened = await post(initialize(1));
    expect(opened.status).toBe(200);
    const sid = opened.sessionId!;
    const headers = { "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25" };
    expect((await post({ jsonrpc: "2.0", method: "notifications/initialized" }, headers)).status).toBe(202);
    return sid;
  }

  beforeAll(async () => {
    home = tempDir("spool-mcp-era-home-");
    project = join(tempDir("spool-mcp-era-"), "proj");
    mkdirSync(join(project, ".git"), { recursive: true });
    port = await freePort();
    server = await spawnServe(["--port", String(port), "--home", home]);
    token = readFileSync(join(home, "token"), "utf8").trim();
    const creator = await SpoolClient.connect(server.url, { token });
    await creator.initialize(undefined, { root: project });
    creator.close();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("a batch with a 2026-07-28 element is refused (400, -32600), with or without a session", async () => {
    const element = { jsonrpc: "2.0", id: 7, method: "tools/list", params: { _meta: envelope } };
    const alone = await post([element], { "MCP-Protocol-Version": VERSION, "Mcp-Method": "tools/list" });
    expect([alone.status, alone.body.error?.code, alone.body.id]).toEqual([400, -32600, null]);
    expect(alone.body.error?.message).toMatch(/batches may not contain requests for protocol revision 2026-07-28/);
    // Before the SDK's classifier, a session's transport served this batch as 2025-11-25 requests.
    const sid = await session();
    const inSession = await post([{ jsonrpc: "2.0", id: 8, method: "tools/list", params: {} }, element], {
      "Mcp-Session-Id": sid,
      "MCP-Protocol-Version": "2025-11-25",
    });
    expect([inSession.status, inSession.body.error?.code]).toEqual([400, -32600]);
    // A JSON-RPC body that is no message at all: -32600 too.
    const nothing = await post({ hello: "world" });
    expect([nothing.status, nothing.body.error?.code, nothing.body.id]).toEqual([400, -32600, null]);
    expect(nothing.body.error?.message).toMatch(/not a valid JSON-RPC message/);
  });

  it("an MCP-Protocol-Version of 2026-07-28 without the _meta envelope, or an invalid envelope: 400, -32602, naming what is wrong, with the request's id", async () => {
    const bare = await post(
      { jsonrpc: "2.0", id: "bare-1", method: "tools/list", params: {} },
      { "MCP-Protocol-Version": VERSION, "Mcp-Method": "tools/list" },
    );
    expect([bare.status, bare.body.error?.code, bare.body.id]).toEqual([400, -32602, "bare-1"]);
    expect(bare.body.error?.message).toContain("missing the required per-request envelope key(s): _meta");
    expect(bare.body.error?.data).toEqual({ envelope: { missing: ["_meta"] } });
    // _meta there, but no protocol version in it.
    const partial = await post(
      { jsonrpc: "2.0", id: 2, method: "tools/list", params: { _meta: { "io.modelcontextprotocol/clientCapabilities": {} } } },
      { "MCP-Protocol-Version": VERSION, "Mcp-Method": "tools/list" },
    );
    expect([partial.status, partial.body.error?.code, partial.body.id]).toEqual([400, -32602, 2]);
    expect(partial.body.error?.message).toContain("io.modelcontextprotocol/protocolVersion");
    // Beside a session's id: before, the session's transport answered -32000 (a version it does not speak), no id.
    const sid = await session();
    const inSession = await post(
      { jsonrpc: "2.0", id: "bare-2", method: "tools/list", params: {} },
      { "Mcp-Session-Id": sid, "MCP-Protocol-Version": VERSION },
    );
    expect([inSession.status, inSession.body.error?.code, inSession.body.id]).toEqual([400, -32602, "bare-2"]);
    // An envelope whose clientInfo is not an Implementation: refused by the SDK's envelope rules (it was taken).
    const bad = modernRequest("tools/list", {}, { token });
    bad.body.params._meta["io.modelcontextprotocol/clientInfo"] = { name: 5 } as never;
    const invalid = await post(bad.body, bad.headers);
    expect([invalid.status, invalid.body.error?.code, invalid.body.id]).toEqual([400, -32602, bad.id]);
    expect(invalid.body.error?.message).toMatch(/Invalid _meta envelope for protocol revision 2026-07-28: io.modelcontextprotocol\/clientInfo/);
  });

  it("headers that disagree with the body: 400, -32020 with the mismatch, the request's id echoed", async () => {
    // Mcp-Method against the body's method.
    const method = modernRequest("tools/list", {}, { token, headers: { "Mcp-Method": "tools/call" } });
    const otherMethod = await post(method.body, method.headers);
    expect([otherMethod.status, otherMethod.body.error?.code, otherMethod.body.id]).toEqual([400, -32020, method.id]);
    expect(otherMethod.body.error?.data).toEqual({
      mismatch: { header: "tools/call", body: "the body names method tools/list but the Mcp-Method header names tools/call" },
    });
    // MCP-Protocol-Version against the envelope's version.
    const version = modernRequest("tools/list", {}, { token, headers: { "MCP-Protocol-Version": "2025-11-25" } });
    const otherVersion = await post(version.body, version.headers);
    expect([otherVersion.status, otherVersion.body.error?.code, otherVersion.body.id]).toEqual([400, -32020, version.id]);
    expect(otherVersion.body.error?.message).toMatch(/envelope names protocol version 2026-07-28 but the MCP-Protocol-Version header names 2025-11-25/);
    // A 2025-11-25 handshake under a 2026-07-28 header opens no session (before, the header was not looked at).
    const handshake = await post(initialize(3), { "MCP-Protocol-Version": VERSION });
    expect([handshake.status, handshake.body.error?.code, handshake.body.id, handshake.sessionId]).toEqual([400, -32020, 3, null]);
  });

  it("each era is served as before: initialize opens a session, a 2025-11-25 request needs one, a 2026-07-28 request is served without one (an Mcp-Session-Id beside it changes nothing)", async () => {
    const sid = await session();
    const listed = await post({ jsonrpc: "2.0", id: 4, method: "tools/list", params: {} }, { "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25" });
    expect(listed.status).toBe(200);
    expect((listed.body.result!.tools as { name: string }[]).map((t) => t.name)).toContain("run_command");
    // An initialize the classifier routes to a session but the session's transport finds malformed (no params,
    // which the v1 SDK's isInitializeRequest used to keep from it): refused, and no session is left behind.
    const malformed = await post({ jsonrpc: "2.0", id: 6, method: "initialize" });
    expect([malformed.status, malformed.sessionId]).toEqual([400, null]);
    const sessionless = await post({ jsonrpc: "2.0", id: 5, method: "tools/list", params: {} });
    expect([sessionless.status, sessionless.body.error?.code]).toEqual([400, -32600]);
    expect(sessionless.body.error?.message).toMatch(/No Mcp-Session-Id/);

    const found = await modern(url(), "server/discover", {}, { token });
    expect([found.status, found.body.result?.resultType]).toEqual([200, "complete"]);
    // The era is the body's: a 2026-07-28 request that also names a session is still served as 2026-07-28.
    const beside = await modern(url(), "server/discover", {}, { token, headers: { "Mcp-Session-Id": sid } });
    expect([beside.status, beside.body.result?.supportedVersions]).toEqual([200, [VERSION]]);
    // Its own checks (src/mcp/stateless/modern.ts) stay: a missing MCP-Protocol-Version header is -32020 there.
    const noHeader = await modern(url(), "server/discover", {}, { token, headers: { "MCP-Protocol-Version": null } });
    expect([noHeader.status, noHeader.body.error?.code]).toEqual([400, -32020]);
  });
});
