import { describe, expect, it } from "vitest";
import { taskIdOf } from "../../src/mcp/spool/task-id.js";
import { describeWithInfra } from "../helpers/infra.js";
import { movedProposal } from "../helpers/moved-proposal.js";
import { modern, TASKS } from "./modern-harness.js";

/**
 * An MCP decision names the facts revision it was shown (src/mcp/spool/decision.ts, modern-tasks.ts): a task asked about
 * with server A's runner, whose server stops before the answer, is moved to B's runner (revision 2). The accept of
 * the form as shown is refused (FACTS_CHANGED) and nothing runs; the task asks again, under `decision@2`, with the new
 * facts and why, and only an accept of that runs it, on B. Two real servers on PostgreSQL; MCP 2026-07-28 at B's /mcp.
 */
const accept = { action: "accept", content: { decision: "accept" } };

describeWithInfra("postgres", "MCP: an accept of facts that changed is refused and asked again on the new facts", () => {
  describe("2026-07-28 tasks at /mcp", () => {
    const moved = movedProposal("facts-mcp");

    it("an accept of local@A's form does not run it on local@B: the task asks again with B's runner, and an accept of that runs it", async () => {
      const { b, root } = await moved.start();
      const path = await moved.propose("moved", "echo ran-here");
      const url = `http://127.0.0.1:${b.server.port}/mcp?root=${encodeURIComponent(root)}`;
      const as = { token: b.server.token, capabilities: { extensions: { [TASKS]: {} }, elicitation: { form: {} } }, client: "tasker" };
      const taskId = taskIdOf("moved", path);
      const message = (result: Record<string, unknown> | undefined, key: string) =>
        String((result?.inputRequests as Record<string, { params: { message: string } }> | undefined)?.[key]?.params.message);

      const first = (await modern(url, "tasks/get", { taskId }, as)).body.result;
      expect(first?.status).toBe("input_required");
      expect(message(first, "decision")).toContain(`default (${moved.runnerA()}; that server's own runner)`);

      await moved.move(path);
      const refused = await modern(url, "tasks/update", { taskId, inputResponses: { decision: accept } }, as);
      expect(refused.body.result).toMatchObject({ resultType: "complete" });
      expect(await moved.pending("moved", path)).toBe(true);

      const second = (await modern(url, "tasks/get", { taskId }, as)).body.result;
      expect(second?.status).toBe("input_required");
      expect(second?.inputRequests).not.toHaveProperty("decision");
      expect(message(second, "decision@2")).toMatch(/^Not accepted: the facts changed .*facts revision 2/);
      expect(message(second, "decision@2")).toContain(`default (${moved.runnerB()}; that server's own runner)`);

      await modern(url, "tasks/update", { taskId, inputResponses: { "decision@2": accept } }, as);
      expect(await moved.ran("moved", path)).toEqual({ server: moved.runnerB(), out: "ran-here\n" });
    }, 120_000);
  });
});
