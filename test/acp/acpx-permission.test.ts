import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { producerOf } from "../../src/protocol/views.js";
import { infraRequired } from "../helpers/infra.js";
import { SPOOL_BIN } from "../helpers/process.js";
import { inTerminal } from "../helpers/pty.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { eventually, startTestServer, type TestServer, tempDir } from "../helpers/server.js";
import { ACPX, installAcpx, NODE22 } from "./acpx-install.js";

/**
 * Issue 38, point 9: acpx asks a person (in its terminal) about a command, and the command is approved elsewhere
 * (another client). Spool withdraws acpx's request (`$/cancel_request`) and shows the command running and ending
 * in its tool call's updates; the turn ends `end_turn`.
 *
 * acpx 0.19.1 exits 5 all the same, and no answer of the agent can change that: ACP has no outcome for "decided
 * elsewhere" (the client answers a withdrawn request `cancelled`), acpx counts every request whose own signal
 * was aborted as `cancelled` (acpx:src/acp/client.ts:2162-2170 finishPermissionRequest, with the request's signal joined
 * in captureDelegatedRequestOwner, :2267-2289; recordPermissionDecision :2724-2735), and exits 5 whenever a turn had
 * requests, none approved, and one denied or cancelled (acpx:src/cli/command-handlers.ts:82-104 applyPermissionExitCode,
 * for `exec` and `prompt` alike, whatever the stop reason). The test pins that down, so a fixed acpx shows here.
 */
describe("acpx 0.19 when the command it asks about is approved elsewhere", () => {
  let missing: string | null = "not installed yet";
  let model: ScriptedModel;
  let ts: TestServer;
  let base: string;
  let project: string;

  beforeAll(async () => {
    missing = await installAcpx();
    if (missing) {
      if (infraRequired) throw new Error(`SPOOL_TEST_INFRA=required: ${missing}`);
      console.warn(`skipping the acpx tests: ${missing}`);
      return;
    }
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl, OPENAI_API_KEY: "sk-test" } });
    base = tempDir("spool-acpx-elsewhere-");
    project = join(base, "app");
    mkdirSync(project);
    execFileSync("git", ["init", "-q", project]);
  }, 300_000);
  afterAll(async () => {
    await ts?.stop();
    await model?.close();
  });

  it("the command runs and acpx shows its output and a finished turn; acpx 0.19.1 still exits 5 (its own count, see above)", async (ctx) => {
    if (missing) return ctx.skip();
    const person = await ts.client();
    await person.initialize(undefined, { root: project, client: { name: "elsewhere", version: "1.0" } });
    const command = "echo approved-$((6*7))";
    const proposed = person.next("run/proposal", (p) => p.command === command, 60_000);
    model.reply(
      { tools: [{ id: "call_sh", name: "sh", arguments: { command } }] },
      { tools: [{ id: "call_done", name: "done", arguments: { summary: "It ran." } }] },
    );
    // A terminal: acpx asks its person there (without one it refuses at once and nothing waits).
    const acpx = inTerminal(NODE22, [ACPX, "--agent", `${process.execPath} ${SPOOL_BIN} acp --server ${ts.server.url}`, "exec", "run the command"], {
      cwd: project,
      // acpx keeps its sessions under $HOME: a fresh one.
      env: { HOME: base, SPOOL_HOME: ts.home },
    });
    try {
      const p = await proposed;
      await acpx.waitFor("[permission] Allow", "acpx asking its person", 60_000);
      await person.call("run/resolve", { run: p.run, path: p.path, decision: "accept" });
      const code = await Promise.race([acpx.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 60_000))]);
      const screen = await acpx.screen();
      // Spool's side: the command ran, accepted by the other client, and acpx was shown it.
      const exitCode = async () => producerOf(await person.call("entry/get", { run: p.run, path: p.path })).exitCode;
      await eventually(async () => (await exitCode()) === 0, 10_000, "the command's exit code in its log entry");
      expect(screen).toContain("approved-42");
      expect(screen).toContain("It ran.");
      // acpx 0.19.1's exit code for a turn whose only request was withdrawn: 5, "permission denied or cancelled".
      expect(code, screen).toBe(5);
    } finally {
      acpx.kill();
      person.close();
    }
  }, 180_000);
});
