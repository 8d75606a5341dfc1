import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LOCK_FILE } from "../../src/home/lock.js";
import { alive, freePort } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";
import { initialize, spawnAcp } from "./harness.js";

/** One process of a snapshot of /proc: its parent and when it started (ticks since boot, which tell a reused pid). */
interface Proc {
  ppid: number;
  start: string;
}

function snapshot(): Map<number, Proc> {
  const table = new Map<number, Proc>();
  for (const name of readdirSync("/proc")) {
    if (!/^[1-9]\d*$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") continue;
    table.set(Number(name), { ppid: Number(fields[1]), start: fields[19]! });
  }
  return table;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").slice(0, 200);
  } catch {
    return "(gone)";
  }
}

/**
 * What acpx 0.19's process-descendants code does for the agent it launched (`root`): at each snapshot, a process
 * it saw descend from the root before stays its own while it lives (the same pid with the same start), and every
 * process descending from the root or from one of its own is added. acpx signals all of them when it exits.
 */
class Witness {
  readonly owned = new Map<number, string>();
  /** Every process it ever saw as the root's descendant, with its command line. */
  readonly seen = new Map<number, string>();
  constructor(readonly root: number) {}

  look(): void {
    const table = snapshot();
    const owned = new Set<number>([this.root]);
    for (const [pid, start] of this.owned) if (table.get(pid)?.start === start) owned.add(pid);
    for (let grew = true; grew; ) {
      grew = false;
      for (const [pid, p] of table) {
        if (owned.has(p.ppid) && !owned.has(pid)) {
          owned.add(pid);
          grew = true;
        }
      }
    }
    owned.delete(this.root);
    this.owned.clear();
    for (const pid of owned) {
      this.owned.set(pid, table.get(pid)!.start);
      if (!this.seen.has(pid)) this.seen.set(pid, commandLine(pid));
    }
  }
}

/**
 * Issue 48, point 7: an editor that snapshots its agent's process tree at any time after `initialize` is answered
 * (acpx 0.19 does, then kills what it saw when it exits) never sees the server `spool acp` started as a descendant:
 * the answer waits until the launcher that started the server has exited.
 */
describe("the server spool acp starts, seen by an editor that watches its agent's descendants", () => {
  it("is never a descendant of spool acp once initialize is answered", async () => {
    const home = tempDir("spool-acp-witness-");
    const project = join(home, "..", "app");
    mkdirSync(project, { recursive: true });
    const port = await freePort();
    writeFileSync(join(home, "config.json"), JSON.stringify({ port, demoModel: true }));
    const acp = spawnAcp({ env: { SPOOL_HOME: home } });
    let serverPid = 0;
    try {
      await initialize(acp);
      // From the answer on, look at the process table as often as the event loop lets us, until a session exists.
      const witness = new Witness(acp.child.pid!);
      let looking = true;
      const looked = (async () => {
        let snapshots = 0;
        while (looking) {
          witness.look();
          snapshots++;
          await new Promise((resolve) => setImmediate(resolve));
        }
        return snapshots;
      })();
      try {
        await acp.connection.agent.request("session/new", { cwd: project, mcpServers: [] });
      } finally {
        looking = false;
      }
      expect(await looked).toBeGreaterThan(0);
      witness.look();
      serverPid = (JSON.parse(readFileSync(join(home, LOCK_FILE), "utf8")) as { pid: number }).pid;
      expect(alive(serverPid)).toBe(true);
      expect([...witness.owned.keys()], `server pid ${serverPid}`).not.toContain(serverPid);
      // Nothing started for the server was alive under spool acp after its answer: not even the launcher, whose child
      // the server is until it exits (a snapshot then, however rarely it falls there, sees the server as a descendant).
      // (Run from source, spool acp has tsx's esbuild service as a child of its own: not the server's, and harmless.)
      const seen = [...witness.seen].filter(([, command]) => !command.includes("esbuild --service"));
      expect(seen.map(([pid, command]) => `${pid}: ${command}`)).toEqual([]);
    } finally {
      await acp.stop("SIGKILL");
      if (serverPid && alive(serverPid)) process.kill(serverPid, "SIGTERM");
    }
  }, 60_000);
});
