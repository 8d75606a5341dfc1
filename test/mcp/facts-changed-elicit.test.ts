import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { ElicitRequestSchema, type ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, expect, it } from "vitest";
import { McpBridge } from "../../src/mcp/sessions/bridge.js";
import { describeWithInfra } from "../helpers/infra.js";
import { movedProposal } from "../helpers/moved-proposal.js";
import type { TestServer } from "../helpers/server.js";
import { startTestServer } from "../helpers/server.js";

/**
 * spool mcp's elicited approval (2025-11-25, src/mcp/spool/decision.ts) names the facts revision it showed. The bridge's
 * proposal is made on server A (A's runner, revision 1) and shown; A stops and B moves the proposal to its own runner
 * (revision 2); a third server C on the same database takes A's address, so the bridge reconnects there. The accept
 * of the first elicitation is refused (FACTS_CHANGED), nothing runs; a new elicitation shows B's runner and why, and
 * its accept runs it on B. The MCP SDK's own (v1) client, in process, answers the elicitations.
 */
describeWithInfra("postgres", "spool mcp: an elicited accept of facts that changed is refused and asked again", () => {
  const moved = movedProposal("facts-elicit");
  let c: TestServer | null = null;
  afterAll(async () => c?.stop());

  it("the accept of local@A's elicitation does not run it on local@B; the new one, with B's runner and why, does", async () => {
    const { a, b, root } = await moved.start();
    const logged: string[] = [];
    const bridge = new McpBridge({
      server: async () => ({ url: a.server.url, token: a.server.token }),
      project: { root },
      mode: "act",
      role: "person",
      version: "test",
      log: { info: () => undefined, warn: (text) => logged.push(text) },
    });
    const asked: { message: string; answer: (r: ElicitResult) => void }[] = [];
    const client = new Client({ name: "elicits", version: "1.0.0" }, { capabilities: { elicitation: { form: {} } } });
    client.setRequestHandler(
      ElicitRequestSchema,
      (request) => new Promise<ElicitResult>((answer) => asked.push({ message: String(request.params.message), answer })),
    );
    const [near, far] = InMemoryTransport.createLinkedPair();
    await bridge.connect(far);
    await client.connect(near);
    const next = async (n: number) => {
      for (let i = 0; i < 600 && asked.length < n; i++) await new Promise((r) => setTimeout(r, 50));
      const found = asked[n - 1];
      if (!found) throw new Error(`no elicitation #${n} within 30 s; logged: ${logged.join("; ")}`);
      return found;
    };
    const called = client.callTool({ name: "run_command", arguments: { command: "echo ran-here" } }, undefined, { timeout: 120_000 });

    const first = await next(1);
    expect(first.message).toContain(`default (${moved.runnerA()}; that server's own runner)`);
    const [, run, path] = /\(run (\S+), (log:\/\/\S+)\)/.exec(first.message)!;
    const session = (await bridge.side.opened())!;
    const back = new Promise<void>((resolve) => session.client.onReconnect(resolve));
    const port = a.server.port;
    await moved.move(path!);
    c = await startTestServer({ port, database: b.server.config.databaseUrl!, env: { SPOOL_TOKEN_FILE: b.server.config.tokenFile } });
    await back;

    first.answer({ action: "accept", content: { decision: "accept" } });
    const second = await next(2);
    expect(second.message).toMatch(/^Not accepted: the facts changed .*facts revision 2/);
    expect(second.message).toContain(`default (${moved.runnerB()}; that server's own runner)`);
    expect(await moved.pending(run!, path!)).toBe(true);

    second.answer({ action: "accept", content: { decision: "accept" } });
    expect(await moved.ran(run!, path!)).toEqual({ server: moved.runnerB(), out: "ran-here\n" });
    await called;
    await client.close();
    await bridge.close();
  }, 120_000);
});
