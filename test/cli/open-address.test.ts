import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnCli, spawnServe } from "../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Issue 45: `spool open` links to the server that made the code, at the address that server serves on — not to the
 * configured port, where anything else may listen and read the code from the page's address.
 * One `spool serve` subprocess, for its --port against SPOOL_PORT; the other servers run in this process (their homes'
 * sockets and facts are the same; what is tested of them is `spool open`, a subprocess): ~2 s of CPU a `spool serve`.
 */
describe("spool open's link goes to the server that made its code", () => {
  const servers: (ServeProcess | TestServer)[] = [];
  afterAll(async () => {
    for (const server of servers) await server.stop();
  });
  const inProcess = async () => {
    const server = await startTestServer();
    servers.push(server);
    return server;
  };
  /** What the CLI sees of a home: no --server, no token file named, the port the configuration says. */
  const clientEnv = (home: string, configuredPort: number) => ({
    SPOOL_HOME: home,
    SPOOL_PORT: String(configuredPort),
    SPOOL_SERVER: "",
    SPOOL_TOKEN_FILE: "",
    SPOOL_PROJECT: "",
    BROWSER: "",
  });
  const exchange = (link: string, at = new URL(link)) =>
    fetch(new URL("/session", at), {
      method: "POST",
      headers: { Origin: at.origin, "Content-Type": "application/json" },
      body: JSON.stringify({ code: new URLSearchParams(new URL(link).hash.slice(1)).get("code") }),
    });

  it("serve --port differing from SPOOL_PORT, and --port 0: the link names the port the server listens on, and its code works there only", async () => {
    const configured = await freePort();
    const home = tempDir("spool-open-home-");
    const real = await freePort();
    const server = await spawnServe(["--port", String(real), "--home", home], { SPOOL_PORT: String(configured) });
    servers.push(server);
    expect(server.url).toBe(`ws://127.0.0.1:${real}/`);

    const cli = spawnCli(["open"], clientEnv(home, configured), { cwd: tempDir() });
    expect(await cli.exit).toBe(0);
    const link = cli.stdout().trim();
    expect(link).toMatch(
      new RegExp(`^http://127\\.0\\.0\\.1:${real}/#code=[A-Za-z0-9_-]{8}\\.[A-Za-z0-9_-]{43}&server=http%3A%2F%2F127\\.0\\.0\\.1%3A${real}$`),
    );

    // Another server (another home, on the configured port's neighbour) does not take the code, and says it is another
    // server's (421); the one that made it does, once.
    const elsewhere = await inProcess();
    const elsewhereUrl = new URL(elsewhere.server.url.replace(/^ws:/, "http:"));
    expect((await exchange(link, elsewhereUrl)).status).toBe(421);
    expect((await exchange(link)).status).toBe(200);

    // Port 0 (startTestServer's): the port the system picked, which no configuration names.
    const any = await inProcess();
    const picked = new URL(any.server.url).port;
    const again = spawnCli(["open"], clientEnv(any.home, configured), { cwd: tempDir() });
    expect(await again.exit).toBe(0);
    expect(again.stdout().trim()).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${picked}/#code=`));
  }, 90_000);

  it("a runner credential gets no sign-in link: refused with a clear error (exit 1), no link printed", async () => {
    const { server, home } = await inProcess();
    const admin = await SpoolClient.connect(server.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    const { token } = await admin.call("token/create", { name: "builder", role: "runner" });
    admin.close();
    const tokenFile = join(tempDir(), "runner-token");
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const cli = spawnCli(["open", "--token-file", tokenFile], clientEnv(home, Number(new URL(server.url).port)), { cwd: tempDir() });
    expect(await cli.exit).toBe(1);
    expect(cli.stdout()).toBe("");
    expect(cli.stderr()).toMatch(/refused a sign-in link: "builder" is a runner credential: it attaches runners and cannot sign a page in/);
    // Asked directly, the server says the same.
    const minted = await fetch(new URL("/session/code", server.url.replace(/^ws:/, "http:")), {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(minted.status).toBe(403);
  }, 60_000);
});
