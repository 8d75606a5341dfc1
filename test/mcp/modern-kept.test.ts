import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";
import { modern, modernRequest, openStream, resultText, VERSION } from "./modern-harness.js";

/*
 * The Spool connections /mcp keeps for a 2026-07-28 principal (four at most, each held while a request is under way),
 * on an in-process server: what the SDK refuses takes none of them.
 */

describe("MCP 2026-07-28 at /mcp: the kept connections", () => {
  let ts: TestServer;
  let project: string;
  let admin: SpoolClient;
  const url = () => `http://127.0.0.1:${ts.server.port}/mcp?root=${encodeURIComponent(project)}`;
  const elicits = { elicitation: { form: {} } };

  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    project = join(tempDir("spool-mcp-kept-"), "proj");
    mkdirSync(join(project, ".git"), { recursive: true });
    admin = await ts.client();
    await admin.initialize(undefined, { root: project });
  });
  afterAll(async () => {
    await ts.stop();
  });

  it("a request naming another revision is refused as such (-32022) while the principal's four kept connections are busy, and takes none of them", async () => {
    const { token: busy } = await admin.call("token/create", { name: "busy-agent", role: "agent" });
    // A person in the project (the admin here) sees the proposals and rejects them after.
    const person = admin;
    const proposed: { run: string; path: string; command: string }[] = [];
    person.on("run/proposal", (p) => void proposed.push(p));
    // Four client names, each with a call waiting for a person: the principal's four kept connections all in use.
    const calls = [1, 2, 3, 4].map((n) => {
      const call = modernRequest(
        "tools/call",
        { name: "run_command", arguments: { command: `echo kept-${n}` } },
        { token: busy, capabilities: elicits, client: `c${n}` },
      );
      return { call, stream: openStream(url(), { method: "POST", headers: call.headers, body: JSON.stringify(call.body) }) };
    });
    await eventually(() => proposed.filter((p) => p.command.startsWith("echo kept-")).length === 4, 20_000, "four proposals");
    const fifth = (version?: string) =>
      modern(url(), "tools/call", { name: "list_commands", arguments: {} }, { token: busy, client: "c5", ...(version ? { version } : {}) });
    // Served, it would need a fifth connection: 429.
    const full = await fifth();
    expect([full.status, full.body.error?.message]).toEqual([
      429,
      "busy-agent and the credentials of its principal hold 4 kept MCP connections, the most for one principal (maxPerPrincipal 4), each with a request under way; retry when one ends",
    ]);
    expect(full.body.error?.data).toMatchObject({ code: "LIMIT_EXCEEDED", limit: "maxPerPrincipal", bound: 4 });
    // Another revision is the SDK's refusal, as when nothing is busy, and no connection is taken or evicted.
    const future = await fifth("2099-01-01");
    expect([future.status, future.body.error?.code]).toEqual([400, -32022]);
    expect(future.body.error?.data).toEqual({ supported: [VERSION], requested: "2099-01-01" });
    for (const p of proposed) await person.call("run/resolve", { run: p.run, path: p.path, decision: "reject" });
    for (const { call, stream } of calls) {
      const opened = await stream;
      await opened.ended;
      const answer = opened.events.find((m) => (m as { id?: unknown }).id === call.id) as { result?: unknown } | undefined;
      expect(resultText(answer?.result)).toMatch(/rejected/);
    }
  }, 60_000);
});
