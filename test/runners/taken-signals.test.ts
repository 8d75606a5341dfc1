import { spawn } from "node:child_process";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TakenSignals } from "../../src/runners/local/taken-signals.js";
import { tempDir } from "../helpers/server.js";

/**
 * A contained command's group, as the launcher makes it: a leader that ignores the client's signals, then bwrap,
 * which may take seconds to set up on a busy machine, then the command with the signals back at their defaults.
 * Here "bwrap" is `sleep` under that name, for longer than a signal waits once the command runs (2 s).
 */
describe("a signal sent while bwrap still sets up waits for the command to start", () => {
  it("INT sent at once reaches a command that starts 3 s later", async () => {
    const dir = tempDir();
    const bwrap = join(dir, "bwrap");
    copyFileSync("/bin/sleep", bwrap);
    const child = spawn("/bin/sh", ["-c", `trap '' INT; "${bwrap}" 3; env --default-signal=INT sleep 30`], { detached: true, stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await new Promise((resolve) => child.once("spawn", resolve));
    const pid = child.pid!;
    const sent: NodeJS.Signals[] = [];
    const signals = new TakenSignals(pid, (pgid, signal) => {
      sent.push(signal);
      process.kill(-pgid, signal);
    });
    const began = Date.now();
    await signals.signal("SIGINT");
    expect(sent).toEqual(["SIGINT"]);
    expect(Date.now() - began).toBeGreaterThanOrEqual(2_500);
    // The command (sleep 30) died of INT: the leader, which ignores it, exits at once with 128 + 2.
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve("still running"), 10_000))]);
    if (code === "still running") process.kill(-pid, "SIGKILL");
    expect(code).toBe(130);
  }, 30_000);
});
