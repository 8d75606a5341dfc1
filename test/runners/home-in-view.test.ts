import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { processStartTicks } from "../../src/home/lock.js";
import { viewsDir } from "../../src/home/registry.js";
import { checkHomeOutsideViews } from "../../src/home/views.js";
import { createLogger } from "../../src/logger.js";
import type { Backend, ExecSpec } from "../../src/runners/backend.js";
import { DockerBackend } from "../../src/runners/docker/docker.js";
import { LocalBackend } from "../../src/runners/local/local.js";
import type { ExecSandbox } from "../../src/runners/sandbox/sandbox.js";
import { startServer } from "../../src/server/server.js";
import { describeWithInfra, infra } from "../helpers/infra.js";
import { describeWithBwrap } from "../helpers/sandbox.js";
import { eventually, tempDir } from "../helpers/server.js";

/*
 * A command's view is fixed when it starts (src/home/views.ts): its project root, or its cwd when it has none, and the
 * configured paths. A Spool home made in one of them while the command runs would be the command's to read; a
 * project is refused as a home's place for good (test/cli/home-in-project), and the rest of a view is refused while
 * a command that sees it runs. Real bubblewrap, an in-process server.
 */

const start = (home: string) => startServer({ home, port: 0, env: process.env, logger: createLogger("silent") });

/** A sandboxed command in `workspace` that waits for a file `go` there, then tries to read `h/token` beside it. */
async function running(workspace: string, sandbox: ExecSandbox, backend: Backend = new LocalBackend(), more: Partial<ExecSpec> = {}) {
  const execution = await backend.start({
    command: 'echo started; while [ ! -e go ]; do sleep 0.05; done; cat h/token 2>&1 || true; cat "$READ/h/token" 2>&1 || true',
    cwd: workspace,
    env: { READ: sandbox.view?.read[0] ?? "/nonexistent" },
    sandbox,
    signal: new AbortController().signal,
    ...more,
  });
  let out = "";
  execution.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  (execution.stderr as Readable).resume();
  await eventually(
    () => out.includes("started"),
    30_000,
    () => `the command to start (it said ${JSON.stringify(out)})`,
  );
  return { execution, output: () => out };
}

const recordsNaming = (root: string) => {
  const dir = viewsDir();
  const names = existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith(".json")) : [];
  return names.filter((name) => {
    try {
      return (JSON.parse(readFileSync(join(dir, name), "utf8")) as { roots: string[] }).roots.includes(root);
    } catch {
      return false;
    }
  });
};

describeWithBwrap("a Spool home in the view of a command running now", () => {
  it("in a workspace-write command's workspace (no project: its cwd): refused while it runs, nothing made; it starts once the command has ended", async () => {
    const workspace = tempDir("spool-view-ws-");
    const { execution, output } = await running(workspace, { mode: "workspace-write" });
    expect(recordsNaming(workspace)).toHaveLength(1);
    await expect(start(join(workspace, "h"))).rejects.toMatchObject({
      name: "HomeInView",
      message: expect.stringContaining(`the Spool home ${join(workspace, "h")} lies in ${workspace}, which a sandboxed command running now sees`),
    });
    expect(existsSync(join(workspace, "h"))).toBe(false);
    writeFileSync(join(workspace, "go"), "");
    await execution.result;
    expect(output()).toContain("h/token: No such file or directory");
    expect(recordsNaming(workspace)).toEqual([]);
    const server = await start(join(workspace, "h"));
    await server.stop();
  });

  it("in a read-only command's configured read path: refused while it runs", async () => {
    const workspace = tempDir("spool-view-ws-");
    const read = tempDir("spool-view-read-");
    const { execution } = await running(workspace, { mode: "read-only", view: { toolchains: [], read: [read], write: [] } });
    expect(recordsNaming(read)).toHaveLength(1);
    await expect(start(join(read, "h"))).rejects.toThrow(new RegExp(`lies in ${read}, which a sandboxed command running now sees`));
    expect(existsSync(join(read, "h"))).toBe(false);
    writeFileSync(join(workspace, "go"), "");
    // read-only: the command cannot make `go` itself, the test did.
    await execution.result;
    expect(recordsNaming(read)).toEqual([]);
  });

  it("a record whose processes are all gone (a runner killed, and its sandbox) is ignored and removed; one whose sandbox outlives its runner stands", async () => {
    const root = tempDir("spool-view-gone-");
    const dir = viewsDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A process that has ended: its pid names no process now (or another one, started at another time).
    const ended = Number(spawnSync("/bin/sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim());
    const gone = join(dir, `${ended}-test.json`);
    writeFileSync(gone, JSON.stringify({ processes: [{ pid: ended, since: 1 }], roots: [root] }));
    expect(() => checkHomeOutsideViews(join(root, "h"))).not.toThrow();
    expect(existsSync(gone)).toBe(false);
    // What is no record of this kind (put there by hand, or by another version) stops no start and is removed.
    for (const [n, text] of ["null", '{"roots":"x"}', '{"processes":[{"pid":"1"}],"roots":[]}', '{"processes":[null],"roots":["/"]}'].entries()) {
      writeFileSync(join(dir, `odd-${n}.json`), text);
      expect(() => checkHomeOutsideViews(join(root, "h"))).not.toThrow();
      expect(existsSync(join(dir, `odd-${n}.json`))).toBe(false);
    }
    // The runner gone, its sandbox's process still there (a launcher's shell above bubblewrap outlives a runner killed).
    const sandbox = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      await eventually(() => processStartTicks(sandbox.pid!) !== null, 5_000, "the stand-in sandbox to run");
      const outlived = join(dir, `${ended}-outlived.json`);
      const processes = [
        { pid: ended, since: 1 },
        { pid: sandbox.pid, since: processStartTicks(sandbox.pid!) },
      ];
      writeFileSync(outlived, JSON.stringify({ processes, roots: [root] }));
      expect(() => checkHomeOutsideViews(join(root, "h"))).toThrow(
        `lies in ${root}, which a sandboxed command running now sees (its sandbox is process ${sandbox.pid})`,
      );
      sandbox.kill("SIGKILL");
      await eventually(() => processStartTicks(sandbox.pid!) === null, 5_000, "the stand-in sandbox to go");
      expect(() => checkHomeOutsideViews(join(root, "h"))).not.toThrow();
      expect(existsSync(outlived)).toBe(false);
    } finally {
      sandbox.kill("SIGKILL");
    }
  });

  it("refused when the record is there: a home's start reads the records after it has recorded its own paths", () => {
    const root = tempDir("spool-view-live-");
    const dir = viewsDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // This process stands in for a runner: its own pid and start.
    const file = join(dir, `${process.pid}-test.json`);
    writeFileSync(file, JSON.stringify({ processes: [{ pid: process.pid, since: processStartTicks(process.pid) }], roots: [root] }));
    try {
      expect(() => checkHomeOutsideViews(join(root, "deep", "h"))).toThrow(
        `lies in ${root}, which a sandboxed command running now sees (its runner is process ${process.pid})`,
      );
      expect(() => checkHomeOutsideViews(`${root}-beside/h`)).not.toThrow();
    } finally {
      unlinkSync(file);
    }
  });
});

it("the records' place is the same under any HOME or XDG_STATE_HOME (a server started under another sees a runner's records); a test run's own beside SPOOL_REGISTRY", () => {
  const passwdHome = userInfo().homedir;
  const place = join(passwdHome, ".local", "state", "spool", "views");
  expect(viewsDir({})).toBe(place);
  expect(viewsDir({ HOME: tempDir(), XDG_STATE_HOME: tempDir() })).toBe(place);
  expect(viewsDir({ SPOOL_REGISTRY: "/var/tmp/run-registry" })).toBe("/var/tmp/run-registry.views");
});

describeWithInfra("docker", "a Spool home in a Docker command's mounts, while it runs", () => {
  let backend: DockerBackend;
  beforeAll(() => {
    backend = new DockerBackend({ image: infra.dockerImage!, mountProject: true });
  });
  afterAll(() => backend.close());

  it("in the project root a workspace-write container mounts: refused while it runs, starts once it has ended", async () => {
    const root = tempDir("spool-view-docker-");
    const { execution } = await running(root, { mode: "workspace-write" }, backend, { project: { root, cwd: "" } });
    expect(recordsNaming(root)).toHaveLength(1);
    await expect(start(join(root, "h"))).rejects.toThrow(`lies in ${root}, which a sandboxed command running now sees`);
    writeFileSync(join(root, "go"), "");
    await execution.result;
    expect(recordsNaming(root)).toEqual([]);
    const server = await start(join(root, "h"));
    await server.stop();
  });
  it("a project root that is, or holds, a login user's home is refused in both modes on this machine's engine; one below it runs", async () => {
    const others = tempDir("spool-view-docker-users-");
    const alice = join(others, "alice");
    mkdirSync(join(alice, "work"), { recursive: true });
    writeFileSync(join(alice, ".pgpass"), "db:5432:*:alice:hunter2\n", { mode: 0o600 });
    const passwd = join(others, "passwd");
    writeFileSync(passwd, `alice:x:1001:1001::${alice}:/bin/bash\n`);
    const users = new DockerBackend({ image: infra.dockerImage!, mountProject: true, passwd });
    try {
      for (const mode of ["read-only", "workspace-write"] as const) {
        for (const root of [alice, others]) {
          const refused = await users
            .start({
              command: "cat .pgpass",
              cwd: root,
              env: {},
              sandbox: { mode, network: false },
              signal: new AbortController().signal,
              project: { root, cwd: "" },
            })
            .catch((error: unknown) => error);
          expect((refused as Error).message, `${mode} ${root}`).toContain(`it is or holds the home directory of a user who logs in here, ${alice}`);
        }
        const work = join(alice, "work");
        const { execution } = await running(work, { mode, network: false }, users, {
          command: "echo started; cat ../.pgpass 2>&1 || true",
          project: { root: work, cwd: "" },
        });
        expect(await execution.result).toMatchObject({ exitCode: 0 });
      }
    } finally {
      await users.close();
    }
  });
});
