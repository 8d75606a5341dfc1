import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SpoolClient } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { startCliInProcess } from "../helpers/cli-in-process.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Issue 23: a command runs only after a person saw all of it. `spool approve` without an exact reference (bare,
 * RUN alone, a part of a path) finds a proposal among what is pending now, which may not be the one the person
 * looked at: it shows the facts and asks on a terminal, and refuses without one.
 */
describe("spool approve / reject of a proposal not named exactly", () => {
  let ts: TestServer;
  let dir: string;
  let person: SpoolClient;
  const env = () => ({ SPOOL_SERVER: ts.server.url, SPOOL_TOKEN_FILE: ts.server.config.tokenFile, SPOOL_HOME: ts.home, SPOOL_PROJECT: "" });
  /** A command run in this process (helpers/cli-in-process.ts): no terminal, as a pipe's; on a terminal, spoolInTerminal. */
  const cli = (args: string[]) => startCliInProcess(args, env(), { cwd: dir });
  const status = async (path: string) => (await person.call("entry/get", { run: "d", path })).status;

  beforeAll(async () => {
    ts = await startTestServer();
    dir = join(tempDir("spool-approve-"), "proj");
    mkdirSync(join(dir, ".git"), { recursive: true });
    person = await ts.client();
    await person.initialize(undefined, { root: dir });
    await person.call("run/create", { alias: "d" });
  }, 60_000);
  afterAll(async () => {
    await ts?.stop();
  });

  it("the race: pending shows X, X is decided elsewhere, Y arrives; a bare approve without a terminal does not accept Y", async () => {
    const x = await person.call("proposal/create", { run: "d", tool: "sh", command: "echo harmless" });
    const pending = cli(["pending"]);
    expect(await pending.exit).toBe(0);
    expect(pending.stdout()).toContain("echo harmless");
    // Decided by another client meanwhile, and another proposal takes its place.
    await person.call("run/resolve", { run: "d", path: x.path, decision: "reject", reason: "elsewhere" });
    const y = await person.call("proposal/create", { run: "d", tool: "sh", command: "echo sneaky > y", env: { Z: "x PATH=/usr/bin" } });

    for (const refs of [[], ["d"], ["d", "sneaky"]]) {
      const approve = cli(["approve", ...refs]);
      expect(await approve.exit, `approve ${refs.join(" ")}: ${approve.stderr()}`).toBe(2);
      // What it found is shown in full, with the exact reference to give.
      expect(approve.stderr()).toContain("not accepted unseen");
      expect(approve.stderr()).toContain(`d  ${y.path}`);
      expect(approve.stderr()).toContain("  command     echo sneaky > y");
      expect(approve.stderr()).toContain("  env         Z='x PATH=/usr/bin'");
      expect(approve.stderr()).toContain("spool approve d 2");
      expect(approve.stdout()).not.toContain("accepted");
      expect(await status(y.path)).toBe(ENTRY.proposed);
    }

    // Named exactly (RUN and number, or the whole path), it is accepted without a question.
    const exact = cli(["approve", "d", "2"]);
    expect(await exact.exit, exact.stderr()).toBe(0);
    expect(exact.stdout()).toContain(`accepted ${y.path}`);
    expect(await status(y.path)).not.toBe(ENTRY.proposed);
  }, 60_000);

  it("a bare reject decides without asking, and prints what it rejected", async () => {
    const p = await person.call("proposal/create", { run: "d", tool: "sh", command: "echo to-reject", cwd: "sub" });
    const reject = cli(["reject"]);
    expect(await reject.exit, reject.stderr()).toBe(0);
    expect(reject.stdout()).toContain(`d  ${p.path}`);
    expect(reject.stdout()).toContain("  command     echo to-reject");
    expect(reject.stdout()).toContain("  cwd         sub");
    expect(reject.stdout()).toContain(`rejected ${p.path}`);
    expect(await status(p.path)).toBe(ENTRY.rejected);
  }, 60_000);

  it("on a terminal a bare approve shows the facts and takes one key: n leaves it pending, y accepts it", async () => {
    const p = await person.call("proposal/create", { run: "d", tool: "sh", command: "echo asked\u202e" });
    const no = spoolInTerminal(["approve"], { cwd: dir, env: env() });
    await no.waitFor("Accept this command? [y/N]");
    expect(no.raw()).toContain("command     echo asked\\u{202e}");
    no.type("n");
    expect(await no.exited).toBe(1);
    // node-pty may report the exit before the last output it read reaches onData: waited for, not read at once.
    await no.waitFor("not accepted");
    expect(await status(p.path)).toBe(ENTRY.proposed);

    const yes = spoolInTerminal(["approve", "d"], { cwd: dir, env: env() });
    await yes.waitFor("Accept this command? [y/N]");
    yes.type("y");
    expect(await yes.exited).toBe(0);
    await yes.waitFor(`accepted ${p.path}`);
    expect(await status(p.path)).not.toBe(ENTRY.proposed);
  }, 60_000);
});
