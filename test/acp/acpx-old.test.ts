import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENTRY } from "../../src/protocol/status.js";
import { producerOf } from "../../src/protocol/views.js";
import { infraRequired } from "../helpers/infra.js";
import { SPOOL_BIN } from "../helpers/process.js";
import { inTerminal } from "../helpers/pty.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";
import { ACPX_0_1, installAcpx01 } from "./acpx-install.js";

/**
 * acpx 0.1.15 (the newest on Node 20) answers `$/cancel_request` with "Method not found": the permission request
 * it shows cannot be withdrawn. A command decided elsewhere must still show its outcome there, and the turn end
 * without the person pressing a key.
 */
describe("acpx 0.1.15 when the command it asks about is decided elsewhere", () => {
  let missing: string | null = "not installed yet";
  let model: ScriptedModel;
  let ts: TestServer;
  let base: string;
  let project: string;

  beforeAll(async () => {
    missing = await installAcpx01();
    if (missing) {
      if (infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${missing}`);
      console.warn(`skipping the acpx 0.1.15 tests: ${missing}`);
      return;
    }
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" } });
    base = tempDir("spool-acpx01-");
    project = join(base, "app");
    mkdirSync(project);
    execFileSync("git", ["init", "-q", project]);
  }, 300_000);
  afterAll(async () => {
    await ts?.stop();
    await model?.close();
  });

  for (const decision of ["accept", "reject"] as const) {
    it(`${decision}ed in another client: acpx shows the outcome and the turn ends, no key pressed`, async (ctx) => {
      if (missing) return ctx.skip();
      const person = await ts.client();
      await person.initialize(undefined, { root: project, client: { name: "elsewhere", version: "1.0" } });
      const command = `echo ${decision}ed-$((6*7))`;
      const proposed = person.next("run/proposal", (p) => p.command === command, 60_000);
      model.reply(
        { tools: [{ id: "call_sh", name: "sh", arguments: { command } }] },
        { tools: [{ id: "call_done", name: "done", arguments: { summary: "Turn over." } }] },
      );
      const acpx = inTerminal(process.execPath, [ACPX_0_1, "--agent", `${process.execPath} ${SPOOL_BIN} acp --server ${ts.server.url}`, "exec", "run it"], {
        cwd: project,
        env: { HOME: base, SPOOL_HOME: ts.home },
      });
      try {
        const p = await proposed;
        await acpx.waitFor("Allow", "acpx asking its person", 60_000);
        await person.call("run/resolve", { run: p.run, path: p.path, decision, ...(decision === "reject" ? { reason: "not today" } : {}) });
        // The turn ends and its outcome shows with nobody at the keyboard…
        await acpx.waitFor("[done] end_turn", "the turn's end", 30_000);
        let screen = "";
        await eventually(async () => (screen = await acpx.screen()).includes("[done] end_turn"), 5_000, "the screen to show the turn's end");
        if (decision === "accept") {
          await eventually(async () => producerOf(await person.call("entry/get", { run: p.run, path: p.path })).exitCode === 0, 10_000, "the exit code");
          expect(screen).toContain("accepted by admin via elsewhere");
          expect(screen).toContain("accepted-42");
        } else expect(screen).toContain("rejected by admin via elsewhere: not today");
        expect(screen).toContain("Turn over.");
        // …and acpx 0.1.15 could not take its question back: its y/N waits for a key, whose answer changes nothing.
        expect(screen).toContain("Method not found");
        acpx.type("\r");
        expect(await acpx.exited).toBe(0);
        const { status } = await person.call("entry/get", { run: p.run, path: p.path });
        expect(status).toBe(decision === "accept" ? ENTRY.done : ENTRY.rejected);
      } finally {
        acpx.kill();
        person.close();
      }
    }, 180_000);
  }
});
