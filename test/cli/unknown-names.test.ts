import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, runCli, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/** Every name that names nothing is an error with a "did you mean" (one helper), and the exit code of README's table. */
describe("unknown names", () => {
  let home: string;
  let serve: ServeProcess;
  let app: string;
  let env: NodeJS.ProcessEnv;
  const spool = (args: string[], cwd = app) => runCli(args, env, cwd, 60_000);
  beforeAll(async () => {
    home = tempDir("spool-names-home-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: await freePort(), demoModel: true }));
    serve = await spawnServe([], { SPOOL_HOME: home });
    env = { SPOOL_HOME: home };
    app = join(tempDir("spool-names-"), "webapp");
    mkdirSync(app);
    execFileSync("git", ["init", "-q", app]);
    expect((await spool(["init"])).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("spool audit --project with a name the server has none of: 4, did you mean, nothing printed", async () => {
    const audit = await spool(["audit", "--project", "webap"]);
    expect(audit.code, audit.err).toBe(4);
    expect(audit.out).toBe("");
    expect(audit.err).toContain('--project webap: no project "webap" — did you mean "webapp"?');
    expect((await spool(["audit", "--project", "webapp"])).code).toBe(0);
  }, 60_000);

  it("spool notify add: a --format, an event or a project that is none is refused, and nothing is added", async () => {
    const format = await spool(["notify", "add", "chat", "http://127.0.0.1:9/hook", "--format", "slak"]);
    expect(format.code, format.err).toBe(2);
    expect(format.err).toContain('--format slak: no format "slak" — did you mean "slack"? (there are: json, slack, ntfy)');
    const event = await spool(["notify", "add", "chat", "http://127.0.0.1:9/hook", "--events", "proposal,decidde"]);
    expect(event.code, event.err).toBe(2);
    expect(event.err).toContain('--events decidde: no event "decidde" — did you mean "decided"?');
    const project = await spool(["notify", "add", "chat", "http://127.0.0.1:9/hook", "--project", "nosuch"]);
    expect(project.code, project.err).toBe(4);
    expect(project.err).toContain('--project nosuch: no project "nosuch" (there are: webapp)');
    expect((await spool(["notify", "list"])).out).toContain("no receivers");
  }, 60_000);

  it("--model: 4 and the nearest alias; a config.json key: did you mean", async () => {
    const model = await spool(["act", "hi", "--model", "demi"]);
    expect(model.code, model.err).toBe(4);
    expect(model.err).toContain('spool act: the server has no model "demi" — did you mean "demo"? (it has: demo)');
    const other = tempDir("spool-names-config-");
    writeFileSync(join(other, "config.json"), JSON.stringify({ prot: 7421 }));
    const config = await runCli(["runs"], { SPOOL_HOME: other }, app, 60_000);
    expect(config.code).toBe(2);
    expect(config.err).toContain('"prot" is not a setting — did you mean "port"?');
  }, 60_000);
});
