import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../../src/client/spool-client.js";
import { type PairedDevice, pair } from "../../helpers/devices.js";
import { runCli, type ServeProcess, spawnServe } from "../../helpers/process.js";
import { startTestServer, type TestServer, tempDir } from "../../helpers/server.js";

/**
 * Scope on every device call (SPEC §2b "Scope in every check"): a scoped admin lists and unpairs the devices of the
 * principals its scope covers (its projects' and its own), never the home admin's phone nor another project's. A device
 * it may not reach is NOT_FOUND, as one nobody has, and stays paired. Over a real server and real pairings.
 */
describe("device/list and device/revoke, scoped", () => {
  let ts: TestServer;
  const open: SpoolClient[] = [];
  let homePhone: PairedDevice;
  let samPhone: PairedDevice;
  let patPhone: PairedDevice;
  let olgaPhone: PairedDevice;
  let sam: SpoolClient;
  let home: SpoolClient;

  const client = async (token: string) => {
    const c = await SpoolClient.connect(ts.server.url, { token });
    open.push(c);
    return c;
  };
  const ids = (devices: { id: string }[]) => devices.map((d) => d.id).sort();

  beforeAll(async () => {
    ts = await startTestServer();
    home = await ts.client();
    open.push(home);
    for (const p of ["app", "other"]) await (await ts.clientIn(p)).close();
    const token = async (name: string, role: string, projects: string[]) => (await home.call("token/create", { name, role: role as "admin", projects })).token;
    const samToken = await token("sam", "admin", ["app"]);
    const patToken = await token("pat", "person", ["app"]);
    const olgaToken = await token("olga", "person", ["other"]);
    const port = ts.server.port;
    homePhone = await pair(port, ts.server.token, { name: "home phone" });
    samPhone = await pair(port, samToken, { name: "sam phone" });
    patPhone = await pair(port, patToken, { name: "pat phone" });
    olgaPhone = await pair(port, olgaToken, { name: "olga phone" });
    sam = await client(samToken);
  }, 60_000);
  afterAll(async () => {
    for (const c of open) if (!c.closed) c.close();
    await ts?.stop();
  });

  it("a scoped admin's list of every device is its scope's: its own and its project's people's, not the home's or another project's", async () => {
    const { devices } = await sam.call("device/list", { all: true });
    expect(ids(devices)).toEqual([samPhone.id, patPhone.id].sort());
    expect(JSON.stringify(devices)).not.toContain("home phone");
    expect(JSON.stringify(devices)).not.toContain("olga");
    // The home's admin still sees every device.
    expect(ids((await home.call("device/list", { all: true })).devices)).toEqual([homePhone.id, samPhone.id, patPhone.id, olgaPhone.id].sort());
  });

  it("it cannot unpair the home admin's phone nor another project's, by id or by name: NOT_FOUND, and they stay paired", async () => {
    for (const which of [homePhone.id, "home phone", olgaPhone.id, "olga phone"]) {
      const refused = await sam.call("device/revoke", { device: which }).then(
        () => null,
        (error: { data?: { code?: string }; message: string }) => error,
      );
      expect(refused?.data?.code, which).toBe("NOT_FOUND");
      expect(refused?.message, which).toBe(`Device "${which}" not found`);
    }
    expect(ids((await home.call("device/list", { all: true })).devices)).toEqual(expect.arrayContaining([homePhone.id, olgaPhone.id]));
  });

  it("it unpairs a device of its project's person", async () => {
    const { device } = await sam.call("device/revoke", { device: "pat phone" });
    expect(device.id).toBe(patPhone.id);
    expect(ids((await home.call("device/list", { all: true })).devices)).not.toContain(patPhone.id);
  });
});

/**
 * The same over real processes: a `spool serve`, credentials minted with `spool token create`, pages paired over HTTP,
 * and `spool devices` run with the scoped admin's token file (the CLI over the server's URL).
 */
describe("spool devices with a scoped admin's credential, against a real spool serve", () => {
  let serve: ServeProcess;
  let home: string;
  let samFile: string;
  const devices: Record<string, PairedDevice> = {};
  const env = () => ({ SPOOL_HOME: home, HOME: home });
  const cli = (args: string[]) => runCli([...args, "--server", serve.url, "--token-file", samFile], { HOME: home }, home, 60_000);

  beforeAll(async () => {
    home = tempDir();
    serve = await spawnServe(["--home", join(home, ".spool"), "--port", "0"], { HOME: home });
    const admin = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, ".spool", "token"), "utf8").trim() });
    for (const p of ["app", "other"]) await admin.call("project/create", { name: p, root: tempDir("spool-device-root-") });
    admin.close();
    const mint = async (name: string, role: string, project: string) => {
      const made = await runCli(["token", "create", name, "--role", role, "--project", project], { ...env(), SPOOL_HOME: join(home, ".spool") }, home, 60_000);
      expect(made.code, made.err).toBe(0);
      return made.out.trim();
    };
    const tokens = { sam: await mint("sam", "admin", "app"), pat: await mint("pat", "person", "app"), olga: await mint("olga", "person", "other") };
    samFile = join(home, "sam.token");
    writeFileSync(samFile, `${tokens.sam}\n`, { mode: 0o600 });
    const port = Number(new URL(serve.url).port);
    devices.home = await pair(port, readFileSync(join(home, ".spool", "token"), "utf8").trim(), { name: "home phone" });
    devices.pat = await pair(port, tokens.pat, { name: "pat phone" });
    devices.olga = await pair(port, tokens.olga, { name: "olga phone" });
  }, 120_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it("--all lists its project's person's device, not the home admin's nor another project's; revoke of those is refused and they stay paired", async () => {
    const listed = await cli(["devices", "--all", "--json"]);
    expect(listed.code, listed.err).toBe(0);
    const ids = (JSON.parse(listed.out) as { id: string }[]).map((d) => d.id);
    expect(ids).toEqual([devices.pat!.id]);
    for (const which of ["home phone", devices.olga!.id]) {
      const refused = await cli(["devices", "revoke", which]);
      expect(refused.code, which).not.toBe(0);
      expect(refused.err).toContain(`Device "${which}" not found`);
    }
    const revoked = await cli(["devices", "revoke", "pat phone"]);
    expect(revoked.code, revoked.err).toBe(0);
    // What the home's admin sees: its phone and olga's still paired, pat's gone.
    const admin = await SpoolClient.connect(serve.url, { token: readFileSync(join(home, ".spool", "token"), "utf8").trim() });
    const all = (await admin.call("device/list", { all: true })).devices.map((d) => d.id).sort();
    admin.close();
    expect(all).toEqual([devices.home!.id, devices.olga!.id].sort());
  }, 120_000);
});
