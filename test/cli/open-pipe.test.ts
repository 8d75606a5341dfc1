import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, runCli, type ServeProcess, spawnServe } from "../helpers/process.js";
import { spoolInTerminal } from "../helpers/pty.js";
import { decodeTerminalQr } from "../helpers/qr.js";
import { tempDir } from "../helpers/server.js";

/** `spool open` to a pipe writes text only, and --browser with nothing to start says so. */
describe("spool open off a terminal", () => {
  let home: string;
  let serve: ServeProcess;
  const env = () => ({ SPOOL_HOME: home, SPOOL_SERVER: "", SPOOL_TOKEN_FILE: "", BROWSER: "", DISPLAY: "", WAYLAND_DISPLAY: "" });
  beforeAll(async () => {
    home = tempDir("spool-open-pipe-home-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: await freePort() }));
    serve = await spawnServe([], { SPOOL_HOME: home });
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("spool open --qr | cat: the link and the code's blocks, no colour escape", async () => {
    const opened = await runCli(["open", "--qr"], env(), home, 60_000);
    expect(opened.code, opened.err).toBe(0);
    expect(opened.out).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#code=/);
    expect(opened.out).toContain("█");
    expect(opened.out).not.toContain("\u001b");
    const [link, ...drawn] = opened.out.split("\n");
    expect(decodeTerminalQr(drawn.join("\n"))).toBe(link);
  }, 60_000);

  it("spool open --qr on a terminal: black on white, whatever the terminal's colours", async () => {
    const term = spoolInTerminal(["open", "--qr"], { cwd: home, env: { ...env(), NO_COLOR: "" }, cols: 120, rows: 60 });
    try {
      expect(await term.exited).toBe(0);
      const raw = term.raw().replace(/\r/g, "");
      expect(raw).toContain("\u001b[47m");
      const [link, ...drawn] = raw.split("\n");
      expect(decodeTerminalQr(drawn.join("\n"))).toBe(link);
    } finally {
      term.kill();
    }
  }, 60_000);

  it("spool open --browser with no $BROWSER and no display: exit 1 saying so, the link still printed", async () => {
    const opened = await runCli(["open", "--browser"], env(), home, 60_000);
    expect(opened.code, opened.err).toBe(1);
    expect(opened.out).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#code=/);
    expect(opened.err).toContain("--browser: no browser to start here (no $BROWSER, and no DISPLAY or WAYLAND_DISPLAY for xdg-open)");
  }, 60_000);
});
