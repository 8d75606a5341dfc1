import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, runCli, type ServeProcess, spawnCli, spawnServe } from "../helpers/process.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { tempDir } from "../helpers/server.js";

/** The deadline (decisionTimeoutMs) is shown where people decide and where they look at the server. */
describe("deadlines shown in the CLI", () => {
  let home: string;
  let serve: ServeProcess;
  let app: string;
  let env: NodeJS.ProcessEnv;
  const spool = (args: string[]) => runCli(args, env, app, 60_000);
  beforeAll(async () => {
    home = tempDir("spool-deadline-home-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: await freePort(), demoModel: true, decisionTimeoutMs: 240_000 }));
    serve = await spawnServe([], { SPOOL_HOME: home });
    env = { SPOOL_HOME: home };
    app = join(tempDir("spool-deadline-"), "app");
    mkdirSync(app);
    execFileSync("git", ["init", "-q", app]);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("spool serve's banner and spool doctor name the deadline in force", async () => {
    expect(serve.output()).toContain("deadline:   a proposal nobody decides within 4 min is rejected (decisionTimeoutMs 240000)");
    const doctor = await runCli(["doctor", "--json"], env, app, 60_000);
    const check = (JSON.parse(doctor.out) as { checks: { name: string; detail: string; data?: { decisionTimeoutMs?: number } }[] }).checks.find(
      (c) => c.name === "deadline",
    );
    expect(check?.detail, doctor.out).toContain("within 4 min is rejected");
    expect(check?.data?.decisionTimeoutMs).toBe(240_000);
    const text = await runCli(["doctor"], { SPOOL_HOME: tempDir("spool-deadline-none-") }, app, 60_000);
    expect(text.out).toMatch(/deadline\s+none: a proposal waits until someone decides/);
  }, 60_000);

  it("act's waiting line and spool pending say when the deadline rejects the proposal", async () => {
    const act = spawnCli(["act", "Tidy: `rm nothing`", "--model", "demo", "--run", "deadline-wait"], env, { cwd: app });
    try {
      await act.waitFor(/waiting for a decision/);
      expect(act.stdout()).toMatch(/ {2}rejected by the deadline in [34] min unless decided\n/);
      const pending = await spool(["pending"]);
      expect(pending.code, pending.err).toBe(0);
      expect(pending.out).toMatch(/proposed \d+s ago, rejected by the deadline in [34] min/);
      const json = JSON.parse((await spool(["pending", "--json"])).out) as { createdAt: number; expiresAt: number }[];
      expect(json[0]!.expiresAt - json[0]!.createdAt).toBe(240_000);
    } finally {
      await act.stop("SIGKILL");
      await spool(["abort", "deadline-wait"]);
    }
  }, 60_000);

  it("the act prompt on a terminal says it too", async () => {
    const term = spoolInTerminal(["act", "What is here? `ls`", "--model", "demo", "--run", "deadline-prompt"], {
      cwd: app,
      env: { SPOOL_HOME: home },
      cols: 160,
      rows: 60,
    });
    try {
      await term.waitFor("Accept?", "the prompt");
      const lines = (await term.screen()).split("\n");
      const question = lines.findIndex((l) => l.includes("Accept?"));
      expect(lines[question - 1], lines.join("\n")).toMatch(/^ {2}rejected by the deadline in [34] min unless decided$/);
      term.type("n");
      expect(await term.exited).toBe(1);
    } finally {
      term.kill();
    }
  }, 60_000);
});
