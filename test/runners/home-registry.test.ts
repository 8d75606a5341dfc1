import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { recordedState, recordedStateSoon, recordStatePaths, registryDir } from "../../src/home/registry.js";

/**
 * The registry of Spool homes every sandbox reads at its start (issue 54; since issue 73 a check: a command whose view
 * holds a recorded path is refused, nothing is mounted over them): one pass that sorts what is recorded into the
 * files and directories there now, by their real paths; nothing about the paths is kept from one start to the next.
 * Real files in a directory outside /tmp.
 */
describe("the home registry's one pass", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeEach(() => {
    dir = realpathSync(mkdtempSync("/var/tmp/spool-registry-test-"));
    env = { SPOOL_REGISTRY: join(dir, "registry") };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A home as a server leaves it: the directory, a token, a database; its WAL and socket recorded, not there. */
  function home(name: string): string {
    const path = join(dir, name);
    mkdirSync(path);
    writeFileSync(join(path, "token"), "t\n");
    writeFileSync(join(path, "spool.db"), "");
    recordStatePaths(
      ["", "token", "spool.db", "spool.db-wal", "spool.sock"].map((p) => join(path, p)),
      env,
    );
    return path;
  }

  it("sorts what is there into files and directories, leaves out what is not", () => {
    const a = home("a");
    const state = recordedState(env);
    expect(state.dirs).toEqual(expect.arrayContaining([a, env.SPOOL_REGISTRY]));
    expect(state.files.sort()).toEqual([join(a, "spool.db"), join(a, "token")]);
    expect(state.paths).not.toContain(join(a, "spool.sock"));
  });

  it("a path that appears after a start is checked at the next one (nothing is kept between starts)", () => {
    const a = home("a");
    expect(recordedState(env).files).not.toContain(join(a, "spool.sock"));
    writeFileSync(join(a, "spool.sock"), "");
    expect(recordedState(env).files).toContain(join(a, "spool.sock"));
    // And a home recorded after a start, in a directory listed before.
    const b = home("b");
    expect(recordedState(env).dirs).toContain(b);
  });

  it("starts that ask together share one pass, which begins after each asked: what appears before it is seen, a later start gets a later pass", async () => {
    const a = home("a");
    const first = recordedStateSoon(env);
    expect(recordedStateSoon(env)).toBe(first);
    // After both asked, before the pass began: seen by it.
    writeFileSync(join(a, "spool.sock"), "");
    expect((await first).files).toContain(join(a, "spool.sock"));
    writeFileSync(join(a, "spool.db-wal"), "");
    const later = recordedStateSoon(env);
    expect(later).not.toBe(first);
    expect((await later).files).toContain(join(a, "spool.db-wal"));
    expect((await first).files).not.toContain(join(a, "spool.db-wal"));
  });

  it("a recorded path that is a link is checked where it leads (a database moved to another disk), judged at each start", () => {
    const a = home("a");
    const disk = join(dir, "disk");
    mkdirSync(disk);
    writeFileSync(join(disk, "spool.db"), "");
    rmSync(join(a, "spool.db"));
    symlinkSync(join(disk, "spool.db"), join(a, "spool.db"));
    expect(recordedState(env).files).toContain(join(disk, "spool.db"));
    // The link retargeted: the new target, not the old one.
    writeFileSync(join(disk, "other.db"), "");
    rmSync(join(a, "spool.db"));
    symlinkSync(join(disk, "other.db"), join(a, "spool.db"));
    const files = recordedState(env).files;
    expect(files).toContain(join(disk, "other.db"));
    expect(files).not.toContain(join(disk, "spool.db"));
    // A dangling link names nothing.
    rmSync(join(disk, "other.db"));
    expect(recordedState(env).files.filter((f) => f.startsWith(disk))).toEqual([]);
  });

  it("a home reached through a linked directory is checked by its real path", () => {
    const real = home("real");
    symlinkSync(real, join(dir, "via"));
    recordStatePaths([join(dir, "via", "token")], env);
    expect(recordedState(env).files).toContain(join(real, "token"));
  });

  it("what was recorded in a directory since removed is forgotten; the removed home itself stays recorded", () => {
    const a = home("a");
    const entries = () => readdirSync(env.SPOOL_REGISTRY!).length;
    expect(entries()).toBe(5);
    rmSync(a, { recursive: true });
    expect(recordedState(env).paths).toEqual([env.SPOOL_REGISTRY]);
    expect(entries()).toBe(1);
  });

  it("a device, a pipe, a system directory or a path under a sandbox's own /dev, /proc or /run is neither recorded nor checked; a socket is", async () => {
    const a = home("a");
    const fifo = join(a, "fifo");
    execFileSync("mkfifo", [fifo]);
    symlinkSync("/dev/null", join(a, "to-null"));
    const socket = join(a, "spool.sock");
    const listener = createServer().listen(socket);
    await once(listener, "listening");
    try {
      const before = readdirSync(env.SPOOL_REGISTRY!).length;
      recordStatePaths(["/dev/null", "/proc/self/environ", "/run/spool.sock", "/", "/usr", "/etc", "/tmp", fifo, join(a, "to-null")], env);
      expect(readdirSync(env.SPOOL_REGISTRY!).length).toBe(before);
      // Entries an older Spool wrote, and a link that leads to a device since: read, and not checked.
      for (const path of ["/dev/null", "/etc", fifo])
        writeFileSync(join(env.SPOOL_REGISTRY!, createHash("sha256").update(path).digest("hex").slice(0, 32)), path);
      rmSync(join(a, "to-null"));
      symlinkSync("/dev/zero", join(a, "token.link"));
      recordStatePaths([join(a, "token.link")], env);
      const state = recordedState(env);
      expect(state.files.sort()).toEqual([join(a, "spool.db"), socket, join(a, "token")].sort());
      expect(state.dirs.sort()).toEqual([a, env.SPOOL_REGISTRY!].sort());
    } finally {
      listener.close();
    }
  });

  it("the suite records its homes in a registry of its own, not the user's (vitest's globalSetup)", () => {
    expect(process.env.SPOOL_REGISTRY).toBeTruthy();
    expect(registryDir()).not.toBe(join(homedir(), ".local", "state", "spool", "state-paths"));
  });
});
