import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

describe("npm run demo", () => {
  it("drives a whole run with the scripted demo model: proposal, accept, live output, the model reading it, done", async () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const child = spawn("npm", ["run", "--silent", "demo"], { cwd: root, env: { ...process.env, SPOOL_LOG: "warn" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, `${out}\n${err}`).toBe(0);
    expect(out).toContain("SCRIPTED demo model");
    expect(out).toMatch(/▶ proposal ls; for i in 1 2 3/);
    expect(out).toMatch(/step 1 of 3\nstep 2 of 3\nstep 3 of 3/);
    expect(err).toContain("a warning on stderr");
    expect(out).toContain("the command exited 0, and notes.txt has 3 lines");
    expect(out).toContain("✔ done: notes.txt has 3 lines");
    expect(err).not.toMatch(/MaxListenersExceeded/);
    // Its temporary home is made private from the start: no warning about making it so (issue 48).
    expect(`${out}\n${err}`).not.toMatch(/private \(0700\)/);
    // npm, then a server and the CLI: 7-9 s quiet, up to 33 s in busy CI runs.
  }, 180_000);
});
