import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCliInProcess, startCliInProcess } from "../helpers/cli-in-process.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/** The small things a new user hit after the tour (issue 48, point 9), over a real server with the demo model. */
describe("spool's small words", () => {
  let home: string;
  let serve: ServeProcess;
  let app: string;
  let env: NodeJS.ProcessEnv;
  /** A command run in this process (helpers/cli-in-process.ts); `spool serve` is a process of its own. */
  const spool = (args: string[]) => runCliInProcess(args, env, app, 60_000);
  beforeAll(async () => {
    home = tempDir("spool-words-home-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: await freePort(), demoModel: true }));
    serve = await spawnServe([], { SPOOL_HOME: home });
    env = { SPOOL_HOME: home };
    app = join(tempDir("spool-words-"), "app");
    mkdirSync(app);
    execFileSync("git", ["init", "-q", app]);
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("spool pending prints the exact spool approve RUN N it asks for", async () => {
    const act = startCliInProcess(["act", "Wait: `echo waited`", "--model", "demo", "--run", "words-pending"], env, { cwd: app });
    await act.waitFor(/waiting for a decision/);
    const pending = await spool(["pending"]);
    expect(pending.code, pending.err).toBe(0);
    expect(pending.out).toContain("spool approve words-pending 1   or   spool reject words-pending 1");
    const approve = await spool(["approve", "words-pending", "1"]);
    expect(approve.code, approve.err).toBe(0);
    expect((await act.exitsWithin(30_000)).code, act.output()).toBe(0);
    // The time limit a plain proposal gets: the server's default, as a duration (the demo's config sets none: 30 min).
    expect(pending.out).toContain("timeout     30 min (the server's default)");
    // One line of output, said so: "1 line", not "1 lines".
    expect(act.output()).not.toMatch(/\b1 lines\b/);
  }, 90_000);

  it("act --run on a finished run says where to read it and how to go on", async () => {
    const again = await spool(["act", "--run", "words-pending"]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain("run words-pending: done");
    expect(again.out).toContain("nothing left to follow: `spool show words-pending`");
  }, 60_000);

  it("token create with stdout redirected does not speak of a token above", async () => {
    const created = await spool(["token", "create", "words-ci", "--role", "viewer"]);
    expect(created.code, created.err).toBe(0);
    expect(created.out).toMatch(/^\S+\n$/);
    expect(created.err).not.toContain("the token above");
    expect(created.err).toContain("its token, written to stdout, is not shown again");
  }, 60_000);

  it("spool init before the server ran: the next command here registers the project, as init said; a viewer's is told it may not", async () => {
    const early = join(tempDir("spool-words-early-"), "early");
    mkdirSync(early);
    // No server at this home: init marks the directory and says what happens next.
    const init = await runCliInProcess(["init"], { SPOOL_HOME: tempDir("spool-words-none-") }, early, 60_000);
    expect(init.code, init.err).toBe(0);
    expect(init.out).toContain("the server is not running; the first command run here registers the project");
    // A viewer's read: nothing registered, and the viewer is told whose step it is (before: "start with spool init").
    const viewerToken = join(tempDir(), "viewer.token");
    writeFileSync(viewerToken, (await spool(["token", "create", "words-early-viewer", "--role", "viewer"])).out);
    const viewer = await runCliInProcess(["runners"], { ...env, SPOOL_TOKEN_FILE: viewerToken }, early, 60_000);
    expect(viewer.code).toBe(4);
    expect(viewer.err).toContain('the server has no project "early" yet, and this credential may not register it');
    expect(viewer.err).toContain("needs the admin role");
    const runsBefore = await runCliInProcess(["runs"], { ...env, SPOOL_TOKEN_FILE: viewerToken }, early, 60_000);
    expect(runsBefore.code, runsBefore.err).toBe(0);
    // The home's token (an admin's), as the person who ran init has: runners answers, and the project is there.
    const runners = await runCliInProcess(["runners"], env, early, 60_000);
    expect(runners.code, runners.err).toBe(0);
    expect(runners.out).toMatch(/local\s+local\s+implied/);
    const projects = await spool(["projects"]);
    expect(projects.out).toContain(early);
    // A git work tree without a marker declared nothing: a read there still registers nothing.
    const plain = join(tempDir("spool-words-git-"), "plain");
    mkdirSync(plain);
    execFileSync("git", ["init", "-q", plain]);
    const read = await runCliInProcess(["runners"], env, plain, 60_000);
    expect(read.code).toBe(4);
    expect(read.err).toContain("nothing has run here");
    expect((await spool(["projects"])).out).not.toContain(plain);
  }, 90_000);

  it("spool runners says implied, not fallback, for the embedded runner nobody made the default", async () => {
    const runners = await spool(["runners"]);
    expect(runners.code, runners.err).toBe(0);
    expect(runners.out).toMatch(/local\s+local\s+implied/);
    expect(`${runners.out}${(await spool(["help", "runners"])).out}`).not.toMatch(/fallback/i);
  }, 60_000);
});
