import { spawnSync } from "node:child_process";
import { expect, it } from "vitest";
import { bwrapCommand, KERNEL_PATHS, PROBE_COMMAND } from "../../src/runners/sandbox/sandbox.js";
import { SYSTEM_DIRS, within } from "../../src/runners/sandbox/view.js";
import { describeWithBwrap } from "../helpers/sandbox.js";

/**
 * The probe a runner runs at its start (and an SSH runner on its host) to learn whether bubblewrap works there binds
 * the system directories, never `/`: binding `/` takes every mount under it, and a mount another program is making or
 * removing meanwhile — a container's overlay while Docker starts one — failed the whole probe ("Can't bind mount
 * /oldroot/ on /newroot/: Unable to apply mount flags"), and the runner went on with no sandbox. Real bubblewrap.
 */

/** Where the probe's sandbox may hold a mount: the system directories, and what bwrap makes of its own. */
const OWN = ["/", "/dev", "/proc", "/run", "/tmp", "/var/tmp", ...KERNEL_PATHS];

describeWithBwrap("the sandbox probe", () => {
  it("passes, and holds no mount of the machine beyond its system directories (no /work, no /tmp or /var of its own)", () => {
    for (const userns of [true, false]) {
      const run = spawnSync("bwrap", bwrapCommand("/", PROBE_COMMAND, userns), { encoding: "utf8" });
      if (userns && run.status !== 0) continue; // A machine without user namespaces: the probe goes without.
      expect(run.status, run.stderr).toBe(0);
    }
    const table = spawnSync("bwrap", bwrapCommand("/", "cat /proc/self/mountinfo"), { encoding: "utf8" });
    expect(table.status, table.stderr).toBe(0);
    const points = table.stdout
      .trim()
      .split("\n")
      .map((line) => line.split(" ")[4]!);
    const stray = points.filter((point) => !OWN.includes(point) && !SYSTEM_DIRS.some((dir) => within(point, dir)) && !within(point, "/dev"));
    expect(stray).toEqual([]);
    expect(points).toContain("/usr");
  });
});
