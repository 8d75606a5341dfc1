import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../../src/client/spool-client.js";
import { type PairedDevice, pair } from "../../helpers/devices.js";
import { startTestServer, type TestServer } from "../../helpers/server.js";

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
