import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServeProcess, SPOOL_BIN, spawnCli, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/** The sockets process `pid` holds open (the CLI's only one is its connection to the server). */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  try {
    // Not its stdio: Node gives a child its pipes as socket pairs.
    for (const fd of readdirSync(`/proc/${pid}/fd`).filter((fd) => Number(fd) > 2)) {
      const target = (() => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return "";
        }
      })();
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) inodes.add(m[1]!);
    }
  } catch {
    // Gone.
  }
  return inodes;
}

/** epoll_wait, epoll_pwait, epoll_pwait2 and futex on x86-64 and on arm64 (which has epoll_pwait only). */
const EPOLL_WAITS = process.arch === "arm64" ? ["22", "441"] : ["232", "281", "441"];
const FUTEX = process.arch === "arm64" ? "98" : "202";

/**
 * Process `pid`'s CPU ticks when it is asleep until a file descriptor is ready: its main thread blocked in epoll with no
 * timer due within a second, every other thread blocked in epoll or on a futex (no file operation under way in
 * libuv's pool); null otherwise, or when /proc cannot tell.
 */
/** The CPU ticks (user and system) of all of process `pid`'s threads, or null when /proc cannot tell. */
function cpuTicks(pid: number): number | null {
  try {
    let ticks = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const line = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const stat = line.slice(line.lastIndexOf(")") + 2).split(" ");
      ticks += Number(stat[11]) + Number(stat[12]);
    }
    return ticks;
  } catch {
    return null;
  }
}

function idleTicks(pid: number): number | null {
  try {
    let ticks = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      // After the command's name, in parentheses: the state, then (fields 14 and 15) user and system time.
      const line = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const stat = line.slice(line.lastIndexOf(")") + 2).split(" ");
      if (stat[0] !== "S") return null;
      ticks += Number(stat[11]) + Number(stat[12]);
      const [nr, , , , timeout] = readFileSync(`/proc/${pid}/task/${tid}/syscall`, "utf8").trim().split(" ");
      if (tid !== String(pid)) {
        if (nr !== FUTEX && !EPOLL_WAITS.includes(nr!)) return null;
        continue;
      }
      if (!EPOLL_WAITS.includes(nr!) || timeout === undefined) return null;
      const ms = Number(BigInt.asIntN(32, BigInt(timeout)));
      if (ms !== -1 && ms < 1000) return null;
    }
    return ticks;
  } catch {
    return null;
  }
}

interface Piped {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs `spool ARGS` with stdout a pipe nobody reads until the CLI has finished its work — it exited, or it has
 * closed its connection to the server (everything it prints is written by then) — and then reads it all. A CLI
 * that exits with writes still queued for the pipe leaves the reader 64 KiB (what the kernel holds) and the rest lost.
 */
async function slowlyRead(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Piped> {
  const child = spawn(process.execPath, [SPOOL_BIN, ...args], { env: { ...process.env, SPOOL_LOG: "warn", ...env }, cwd, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.pause();
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const parts: Buffer[] = [];
  const closed = new Promise((resolve) => child.stdout!.once("close", resolve));
  let reading = false;
  const read = () => {
    if (reading) return;
    reading = true;
    child.stdout!.on("data", (d: Buffer) => parts.push(d));
    child.stdout!.resume();
  };
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = true;
      // Read from the exit event itself: on the next tick Node resumes a child's stdio streams that have no
      // reader and throws away what the pipe still holds (the CLI is done, which is when this reader reads).
      read();
      resolve({ code, signal });
    }),
  );
  // The gate: the CLI exited, or it connected and has since closed the connection (a CLI that cuts its output short
  // exits right after closing it), and then it is asleep until its stdout can take more (idleTicks), seen so twice
  // 100 ms apart without a CPU tick in between, or it is still there 3 s later (/proc told nothing). A CLI so quick
  // that it was never seen connected is read once it is seen asleep so 2 s after its start, or after 60 s: one that
  // cuts its output short has exited by then.
  let seen = false;
  let closedAt = 0;
  let idle = null as { at: number; ticks: number } | null;
  let connectedIdle = null as { at: number; ticks: number } | null;
  const since = Date.now();
  for (;;) {
    if (exited || (!seen && Date.now() - since > 60_000) || (closedAt && Date.now() - closedAt > 3_000)) break;
    if (socketInodes(child.pid!).size > 0) {
      // Connected: still talking, unless it has used no CPU for 3 s (a CLI that keeps its connection while it waits for
      // its stdout to take more): then it is read, as a real reader would.
      seen = true;
      closedAt = 0;
      const ticks = cpuTicks(child.pid!);
      if (ticks === null) connectedIdle = null;
      else if (!connectedIdle || connectedIdle.ticks !== ticks) connectedIdle = { at: Date.now(), ticks };
      else if (Date.now() - connectedIdle.at >= 3_000) break;
      idle = null;
    } else if (seen || Date.now() - since > 2_000) {
      // A CLI never seen connected (quick, between two looks; q19 waited the 60 s for one): asleep as below, 2 s on,
      // it has done its talking too.
      if (seen) closedAt ||= Date.now();
      const ticks = idleTicks(child.pid!);
      if (ticks === null) idle = null;
      else if (!idle || idle.ticks !== ticks) idle = { at: Date.now(), ticks };
      else if (Date.now() - idle.at >= 100) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  read();
  const ended = await exit;
  await closed;
  return { ...ended, stdout: Buffer.concat(parts), stderr };
}

/** Runs `spool ARGS` with stdout a file (written synchronously: never cut short), and returns what it holds. */
async function intoFile(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Buffer> {
  const file = join(tempDir("spool-out-"), "out");
  const fd = openSync(file, "w");
  const child: ChildProcess = spawn(process.execPath, [SPOOL_BIN, ...args], {
    env: { ...process.env, SPOOL_LOG: "warn", ...env },
    cwd,
    stdio: ["ignore", fd, "inherit"],
  });
  closeSync(fd);
  const code = await new Promise((resolve) => child.once("exit", resolve));
  expect(code, `spool ${args.join(" ")}`).toBe(0);
  return readFileSync(file);
}

describe("spool's output through a pipe (issue 38, point 1)", () => {
  let serve: ServeProcess;
  let env: NodeJS.ProcessEnv;
  let project: string;
  /** Bytes of the stored stdout channel of run-1's command. */
  let stored: number;
  const SEQ = 300_000;
  // A prompt far longer than a pipe holds (64 KiB), or the socket pair Node gives a child as its stdout (~200 KiB
  // here): `show --json` prints ~1.2 MB, so a CLI that exits with writes queued is read short. In arguments of
  // ~100 KB (one argument may not pass 128 KiB); act joins them with spaces.
  const PROMPT = [`Count: \`seq 1 ${SEQ}\``, ...Array.from({ length: 12 }, () => "and say so ".repeat(9000).trim())];
  const expectedSeq = Buffer.from(`${Array.from({ length: SEQ }, (_, i) => i + 1).join("\n")}\n`);

  beforeAll(async () => {
    const base = tempDir("spool-pipes-");
    const home = join(base, "home");
    project = join(base, "app");
    mkdirSync(project);
    execFileSync("git", ["init", "-q", project]);
    serve = await spawnServe(["--port", "0", "--home", home, "--demo-model"]);
    env = { SPOOL_HOME: home, SPOOL_SERVER: serve.url };
    const act = spawnCli(["act", ...PROMPT, "--model", "demo", "--yes"], env, { cwd: project });
    expect((await act.exitsWithin(60_000)).code, act.stderr()).toBe(0);
    const entries = JSON.parse((await intoFile(["entries", "1", "--json"], env, project)).toString()) as {
      path: string;
      bytes: number;
      channel: { name: string } | null;
    }[];
    stored = entries.find((e) => e.channel?.name === "stdout")!.bytes;
    expect(stored).toBe(expectedSeq.length);
  }, 120_000);
  afterAll(async () => {
    await serve?.stop();
  });

  for (const args of [
    ["tail", "1"],
    ["tail", "1", "-f"],
    ["attach", "1"],
  ]) {
    it(`spool ${args.join(" ")} writes the whole channel to a pipe read only after it is done`, async () => {
      const got = await slowlyRead(args, env, project);
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout.length).toBe(stored);
      expect(got.stdout.equals(expectedSeq)).toBe(true);
    }, 90_000);
  }

  it("spool act --yes writes every line of the command's output and its final line to a slow pipe", async () => {
    const got = await slowlyRead(["act", `Count: \`seq 1 ${SEQ}\``, "--model", "demo", "--yes"], env, project);
    expect(got.code, got.stderr).toBe(0);
    const text = got.stdout.toString();
    expect(text).toContain(expectedSeq.toString());
    expect(text).toContain("finished: done, exit 0");
    expect(text).toMatch(/✔ done\n$/);
  }, 90_000);

  for (const args of [["show", "1", "--json"]]) {
    it(`spool ${args.join(" ")} writes as much to a slow pipe as to a file`, async () => {
      const file = await intoFile(args, env, project);
      expect(file.length).toBeGreaterThan(1024 * 1024);
      const got = await slowlyRead(args, env, project);
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout.length).toBe(file.length);
    }, 120_000);
  }

  it("a reader that stops early (| head -1) ends the CLI quietly: exit 0, nothing on stderr", async () => {
    const child = spawn(process.execPath, [SPOOL_BIN, "tail", "1"], {
      env: { ...process.env, SPOOL_LOG: "warn", ...env },
      cwd: project,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    await new Promise((resolve) => child.stdout!.once("data", resolve));
    child.stdout!.destroy();
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once("exit", (c, s) => resolve([c, s])));
    expect(signal === "SIGPIPE" || code === 0 || code === 141, `${code} ${signal}`).toBe(true);
    expect(stderr).toBe("");
  }, 60_000);
});
