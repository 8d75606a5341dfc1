import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCliInProcess } from "../helpers/cli-in-process.js";
import { decodeTerminalQr } from "../helpers/qr.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

describe("spool open", () => {
  let ts: TestServer;
  let env: NodeJS.ProcessEnv;
  const cwd = tempDir("spool-open-");
  beforeAll(async () => {
    ts = await startTestServer();
    env = { SPOOL_SERVER: ts.server.url, SPOOL_TOKEN_FILE: join(ts.home, "token"), SPOOL_PROJECT: "", BROWSER: "" };
  });
  afterAll(() => ts.stop());

  const exchange = (link: string) => {
    const url = new URL(link);
    const code = new URLSearchParams(url.hash.slice(1)).get("code")!;
    return fetch(new URL("/session", url), {
      method: "POST",
      headers: { Origin: url.origin, "Content-Type": "application/json" },
      body: JSON.stringify({ code }),
    });
  };

  it("prints a link to the page whose one-time code signs a browser in once, naming the project", async () => {
    const cli = startCliInProcess(["open", "--project", "alpha"], env, { cwd });
    expect(await cli.exit).toBe(0);
    const link = cli.stdout().trim();
    expect(link).toMatch(
      new RegExp(
        `^http://127\\.0\\.0\\.1:${ts.server.port}/#code=[A-Za-z0-9_-]{8}\\.[A-Za-z0-9_-]{43}&project=alpha&server=http%3A%2F%2F127\\.0\\.0\\.1%3A${ts.server.port}$`,
      ),
    );
    expect(link).not.toContain(ts.server.token);
    expect(cli.stderr()).toMatch(/once, within a minute/);
    expect((await exchange(link)).status).toBe(200);
    expect((await exchange(link)).status).toBe(401);
  });

  it("--qr draws the link as a QR code a camera reads back to the same link, which signs a browser in; a loopback link says how a phone reaches it", async () => {
    const cli = startCliInProcess(["open", "--qr", "--project", "alpha"], env, { cwd });
    expect(await cli.exit).toBe(0);
    const [link, ...drawn] = cli.stdout().split("\n");
    expect(link).toMatch(
      new RegExp(
        `^http://127\\.0\\.0\\.1:${ts.server.port}/#code=[A-Za-z0-9_-]{8}\\.[A-Za-z0-9_-]{43}&project=alpha&server=http%3A%2F%2F127\\.0\\.0\\.1%3A${ts.server.port}$`,
      ),
    );
    // A block of half-block lines; to a pipe without a colour escape (on a terminal: black on white, test/cli/open-pipe.test.ts).
    const block = drawn.filter((line) => /[▀▄█]/.test(line));
    expect(block.length).toBeGreaterThan(10);
    expect(drawn.join("\n")).not.toContain("\x1b");
    expect(decodeTerminalQr(drawn.join("\n"))).toBe(link);
    expect(cli.stderr()).toMatch(/a phone reaches it only through a tunnel .*spool open --qr --server ws:\/\/ADDRESS:PORT\//);
    expect((await exchange(link!)).status).toBe(200);
  });

  it("--browser hands the link to $BROWSER", async () => {
    const dir = tempDir("spool-browser-");
    const script = join(dir, "browser.sh");
    writeFileSync(script, `#!/bin/sh\nprintf '%s' "$1" > ${join(dir, "opened")}\n`);
    chmodSync(script, 0o755);
    const cli = startCliInProcess(["open", "--browser", "--project", "alpha"], { ...env, BROWSER: script }, { cwd });
    expect(await cli.exit).toBe(0);
    const link = cli.stdout().trim();
    await expect.poll(() => readFileSync(join(dir, "opened"), "utf8"), { timeout: 10_000 }).toBe(link);
  });

  it("says what to do when the token is wrong, no server answers, or the browser cannot start (exit 3, 3, 1)", async () => {
    const wrong = join(cwd, "wrong-token");
    writeFileSync(wrong, "0".repeat(64));
    const refused = startCliInProcess(["open", "--token-file", wrong], env, { cwd });
    const nobody = startCliInProcess(["open", "--server", "ws://127.0.0.1:9/"], env, { cwd });
    const broken = startCliInProcess(["open", "--browser"], { ...env, BROWSER: join(cwd, "no-such-browser") }, { cwd });
    expect(await Promise.all([refused.exit, nobody.exit, broken.exit])).toEqual([3, 3, 1]);
    expect(refused.stderr()).toMatch(/wrong token for http:\/\/127\.0\.0\.1:\d+\/ .*wrong-token/);
    expect(nobody.stderr()).toMatch(/no server at http:\/\/127\.0\.0\.1:9\/ — start one with `spool serve`/);
    expect(broken.stdout()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#code=/);
    expect(broken.stderr()).toMatch(/could not start a browser with .*no-such-browser .*open the link above yourself/);
  });

  it("refuses a server URL that is not ws:// and an argument it does not take (exit 2)", async () => {
    const bad = startCliInProcess(["open", "--server", "ftp://x/"], env, { cwd });
    const extra = startCliInProcess(["open", "now"], env, { cwd });
    expect(await Promise.all([bad.exit, extra.exit])).toEqual([2, 2]);
    expect(bad.stderr()).toMatch(/--server must be a WebSocket URL such as ws:\/\/127\.0\.0\.1:7420\//);
    expect(extra.stderr()).toMatch(/unexpected argument "now"/);
  });
});
