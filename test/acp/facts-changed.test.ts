import { afterEach, describe, expect, it } from "vitest";
import { describeWithInfra } from "../helpers/infra.js";
import { movedProposal } from "../helpers/moved-proposal.js";
import { initialize, type PermissionAsk, spawnAcp } from "./harness.js";
import { type V2Ask, type V2Editor, v2EditorByUrl } from "./v2-harness.js";

/**
 * ACP's permission answer sends the facts revision the request showed (src/acp/permissions.ts): a proposal asked about
 * with server A's runner, whose server stops before the answer, is moved to B's runner (revision 2). "Allow" on the
 * request as sent is refused (FACTS_CHANGED), nothing runs; the editor is asked again with the new facts and why,
 * and only "Allow" on that runs it, on B. Two real servers on PostgreSQL; the ACP SDK's own clients, v1 over
 * `spool acp`'s stdio and v2 over /acp.
 */
const allow = { outcome: { outcome: "selected" as const, optionId: "allow_once" } };
const v1Text = (ask: PermissionAsk) =>
  (ask.params.toolCall.content ?? []).map((c) => (c.type === "content" && c.content.type === "text" ? c.content.text : "")).join("\n");
const v2Text = (ask: V2Ask) => ask.params.description ?? "";

describeWithInfra("postgres", "ACP: an Allow on facts that changed is refused and asked again on the new facts", () => {
  describe("v1, spool acp over stdio", () => {
    const moved = movedProposal("facts-acp1");
    const stops: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
      for (const stop of stops.splice(0)) await stop();
    });

    it("Allow on local@A's request does not run it on local@B: a new request with B's runner, and Allow on that runs it", async () => {
      const { b, root } = await moved.start();
      const path = await moved.propose("moved", "echo ran-here");
      const acp = spawnAcp({ args: ["--server", b.server.url], env: { SPOOL_TOKEN_FILE: b.server.config.tokenFile } });
      stops.push(() => acp.stop("SIGKILL"));
      await initialize(acp, { name: "zed" });
      await acp.connection.agent.request("session/resume", { sessionId: "team/moved", cwd: root });
      const first = await acp.permission(30_000);
      expect(v1Text(first)).toContain(`default (${moved.runnerA()}; that server's own runner)`);

      await moved.move(path);
      first.answer(allow);
      const second = await acp.permission(30_000);
      expect(v1Text(second)).toMatch(/^Not accepted: the facts changed .*facts revision 2/);
      expect(v1Text(second)).toContain(`default (${moved.runnerB()}; that server's own runner)`);
      expect(second.params.toolCall.toolCallId).toBe(first.params.toolCall.toolCallId);
      expect(await moved.pending("moved", path)).toBe(true);

      second.answer(allow);
      expect(await moved.ran("moved", path)).toEqual({ server: moved.runnerB(), out: "ran-here\n" });
    }, 120_000);
  });

  describe("v2, /acp over Streamable HTTP", () => {
    const moved = movedProposal("facts-acp2");
    let editor: V2Editor | null = null;
    afterEach(() => {
      void editor?.connection.close();
    });

    it("the same through v2: the request's description shows the new facts and why, Allow on that runs it on local@B", async () => {
      const { b, root } = await moved.start();
      const path = await moved.propose("moved", "echo ran-here");
      editor = v2EditorByUrl(b.server.port, "http", b.server.token);
      await editor.connection.agent.request("initialize", { protocolVersion: 2, info: { name: "v2-editor", version: "1.0.0" }, capabilities: {} });
      await editor.connection.agent.request("session/resume", { sessionId: "team/moved", cwd: root });
      const first = await editor.permission(30_000);
      expect(v2Text(first)).toContain(`default (${moved.runnerA()}; that server's own runner)`);

      await moved.move(path);
      first.answer(allow);
      const second = await editor.permission(30_000);
      expect(v2Text(second)).toMatch(/^Not accepted: the facts changed .*facts revision 2/);
      expect(v2Text(second)).toContain(`default (${moved.runnerB()}; that server's own runner)`);
      expect(await moved.pending("moved", path)).toBe(true);

      second.answer(allow);
      expect(await moved.ran("moved", path)).toEqual({ server: moved.runnerB(), out: "ran-here\n" });
    }, 120_000);
  });
});
