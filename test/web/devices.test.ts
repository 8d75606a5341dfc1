import { writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { startCliInProcess } from "../helpers/cli-in-process.js";
import { fetchOnce, mintCode, pageSocket, pair, redeem, sessionOf } from "../helpers/devices.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/**
 * Issue 53: a browser signed in with a `spool open` code is a paired device: a credential of its own in the store,
 * which outlives a restart, is listed and revoked by `spool devices`, and is bounded per principal (never globally).
 */
describe("paired devices", () => {
  const home = tempDir("spool-devices-");
  let ts: TestServer;
  let admin: SpoolClient;
  const port = () => ts.server.port;
  const cli = (args: string[], token = ts.server.token) => {
    const dir = tempDir("spool-devices-cli-");
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    return startCliInProcess(args, { SPOOL_SERVER: ts.server.url, SPOOL_TOKEN_FILE: tokenFile, SPOOL_PROJECT: "" }, { cwd: dir });
  };
  beforeAll(async () => {
    ts = await startTestServer({ home, limits: { maxDevicesPerPrincipal: 4, maxCodesPerPrincipal: 3 } });
    admin = await ts.clientIn("devices");
  });
  afterAll(() => ts.stop());

  it("pairing names the device from the browser (or --name), lists it with its principal, role and address, and keeps only digests", async () => {
    const phone = await pair(port(), ts.server.token);
    expect(phone.name).toBe("Chrome on Android");
    expect(phone.id).toMatch(/^[0-9a-f]{12}$/);
    const named = await pair(port(), ts.server.token, { name: "kitchen tablet" });
    expect(named.name).toBe("kitchen tablet");
    const again = await pair(port(), ts.server.token);
    expect(again.name).toBe("Chrome on Android (2)");
    const info = (await (await sessionOf(phone)).json()) as { principal: { name: string }; device: { id: string; name: string } };
    expect(info).toMatchObject({ principal: { name: "admin" }, device: { id: phone.id, name: "Chrome on Android" } });
    const { devices } = await admin.call("device/list", {});
    expect(devices.map((d) => d.name)).toEqual(expect.arrayContaining(["Chrome on Android", "kitchen tablet", "Chrome on Android (2)"]));
    expect(devices.find((d) => d.id === phone.id)).toMatchObject({ principal: "admin", role: "admin", lastAddress: "127.0.0.1" });
    // Neither half of the credential is in the store: only their digests.
    const secret = phone.cookie.split("=")[1]!.split(".")[1]!;
    const rows = ts.server.store.kind === "sqlite" ? JSON.stringify((await ts.server.store.db.selectFrom("devices").selectAll().execute()) as unknown[]) : "";
    expect(rows).not.toContain(secret);
    expect(rows).not.toContain(phone.key);
    for (const d of [named, again]) await admin.call("device/revoke", { device: d.id });
  });

  it("a paired device stays signed in across a restart of the server", async () => {
    const phone = await pair(port(), ts.server.token);
    expect((await sessionOf(phone)).status).toBe(200);
    admin.close();
    await ts.stop();
    ts = await startTestServer({ home, limits: { maxDevicesPerPrincipal: 4, maxCodesPerPrincipal: 3 } });
    admin = await ts.clientIn("devices");
    // The new server listens on another port: the browser reaches it there (the cookie goes by that port's name).
    const moved = { ...phone, origin: `http://127.0.0.1:${port()}` };
    expect((await sessionOf(moved)).status).toBe(200);
    const { ws } = await pageSocket(moved);
    ws.close();
    await admin.call("device/revoke", { device: phone.id });
  });

  it("spool devices lists them; spool devices revoke NAME closes its page within a second and it is signed out", async () => {
    const phone = await pair(port(), ts.server.token, { name: "lost-phone" });
    const { closed } = await pageSocket(phone);
    const listed = cli(["devices"]);
    expect(await listed.exit).toBe(0);
    expect(listed.stdout()).toMatch(/lost-phone\s+admin \(admin\)/);
    const json = cli(["devices", "--json"]);
    expect(await json.exit).toBe(0);
    expect(JSON.parse(json.stdout())).toEqual(expect.arrayContaining([expect.objectContaining({ id: phone.id, name: "lost-phone" })]));
    const revoked = cli(["devices", "revoke", "lost-phone"]);
    expect(await revoked.exit).toBe(0);
    expect(revoked.stdout()).toMatch(new RegExp(`unpaired lost-phone \\(${phone.id}, admin\\): closed 1 page connection`));
    expect(await closed).toEqual({ code: 1008, reason: "signed out: device unpaired" });
    // The page, read again, says what happened to it in the same word: unpaired, not "not paired".
    const after = await sessionOf(phone);
    expect(after.status).toBe(401);
    expect(await after.text()).toContain("This device was unpaired: run `spool open`");
    await expect(pageSocket(phone)).rejects.toThrow(/HTTP 401/);
    // The page closes at once on the revocation (the CLI's own start is not counted: device/revoke is): under a
    // second here; the bound leaves a busy machine room, far under any sweep's period.
    const again2 = await pair(port(), ts.server.token, { name: "timed" });
    const timed = await pageSocket(again2);
    const started = Date.now();
    await admin.call("device/revoke", { device: "timed" });
    await timed.closed;
    expect(Date.now() - started).toBeLessThan(10_000);
    // The trail has the pairing (with the device and its address) and the unpairing.
    const { events } = await admin.call("audit/list", {});
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ action: "sign-in", principal: "admin", detail: expect.objectContaining({ device: phone.id, address: "127.0.0.1" }) }),
        expect.objectContaining({ action: "device/revoke", detail: expect.objectContaining({ device: phone.id, name: "lost-phone" }) }),
      ]),
    );
    const again = cli(["devices", "revoke", "lost-phone"]);
    expect(await again.exit).not.toBe(0);
    expect(again.stderr()).toMatch(/Device "lost-phone" not found/);
  });

  it("a page unpairs itself (DELETE /session): the device is gone from the list and signed out", async () => {
    const phone = await pair(port(), ts.server.token, { name: "self-unpair" });
    const response = await fetch(`${phone.origin}/session`, {
      method: "DELETE",
      headers: { Origin: phone.origin, Cookie: phone.cookie, "Spool-Session-Key": phone.key },
    });
    expect(response.status).toBe(204);
    const after = await sessionOf(phone);
    expect(after.status).toBe(401);
    expect(await after.text()).toContain("This device was unpaired");
    const { devices } = await admin.call("device/list", {});
    expect(devices.map((d) => d.id)).not.toContain(phone.id);
  });

  it("a viewer sees and revokes its own devices only; device/list all is the admin's", async () => {
    const { token } = await admin.call("token/create", { name: "viewer-a", role: "viewer" });
    const mine = await pair(port(), token);
    const adminDevice = await pair(port(), ts.server.token, { name: "admin-desk" });
    const v = await SpoolClient.connect(ts.server.url, { token });
    expect((await v.call("device/list", {})).devices.map((d) => d.id)).toEqual([mine.id]);
    await expect(v.call("device/list", { all: true })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    await expect(v.call("device/revoke", { device: adminDevice.id })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    expect((await sessionOf(adminDevice)).status).toBe(200);
    expect((await admin.call("device/list", { all: true })).devices.map((d) => d.id)).toEqual(expect.arrayContaining([mine.id, adminDevice.id]));
    v.close();
    // Its credential revoked: its device is signed out with it.
    await admin.call("token/revoke", { name: "viewer-a" });
    expect((await sessionOf(mine)).status).toBe(401);
    await admin.call("device/revoke", { device: adminDevice.id });
  });

  it("a viewer minting and redeeming 200 codes ends none of the admin's devices or codes: it only ever ends its own oldest", async () => {
    const { token } = await admin.call("token/create", { name: "noisy", role: "viewer" });
    const adminPage = await pair(port(), ts.server.token, { name: "admin-page" });
    const { closed } = await pageSocket(adminPage);
    let adminClosed = false;
    void closed.then(() => (adminClosed = true));
    const freshLink = (await (await mintCode(port(), ts.server.token)).json()) as { code: string };
    let last = null as Awaited<ReturnType<typeof pair>> | null;
    for (let i = 0; i < 200; i++) last = await pair(port(), token);
    // And 200 codes minted without being redeemed.
    for (let i = 0; i < 200; i++) expect((await mintCode(port(), token)).status).toBe(201);
    expect(adminClosed).toBe(false);
    expect((await sessionOf(adminPage)).status).toBe(200);
    expect((await redeem(port(), freshLink.code)).status).toBe(200);
    // The viewer keeps its newest devices, up to its own bound.
    const noisy = (await admin.call("device/list", { all: true })).devices.filter((d) => d.principal === "noisy");
    expect(noisy).toHaveLength(4);
    expect(noisy.map((d) => d.id)).toContain(last!.id);
    await admin.call("token/revoke", { name: "noisy" });
  }, 60_000);

  it("a use from a new address is audited once (device/address, with the address before); the same address again adds no row", async () => {
    const phone = await pair(port(), ts.server.token, { name: "travelling phone" });
    const rows = async () =>
      (await admin.call("audit/list", {})).events.filter((e) => e.action === "device/address" && (e.detail as { device?: string }).device === phone.id);
    // From the address it paired from: nothing to record.
    expect((await sessionOf(phone)).status).toBe(200);
    expect(await rows()).toEqual([]);
    // 127.0.0.2 is another address of the loopback: the server sees the phone come from somewhere new.
    expect(await sessionFrom(phone, "127.0.0.2")).toBe(200);
    const moved = await rows();
    expect(moved).toHaveLength(1);
    expect(moved[0]).toMatchObject({
      principal: "admin",
      client: "spool-web",
      detail: { device: phone.id, name: "travelling phone", address: "127.0.0.2", before: "127.0.0.1" },
    });
    expect((await admin.call("device/list", {})).devices.find((d) => d.id === phone.id)).toMatchObject({ lastAddress: "127.0.0.2" });
    // Used again from there: no new row; back home is a move again.
    expect(await sessionFrom(phone, "127.0.0.2")).toBe(200);
    expect(await rows()).toHaveLength(1);
    expect((await sessionOf(phone)).status).toBe(200);
    expect((await rows()).map((e) => (e.detail as { address: string }).address)).toEqual(["127.0.0.2", "127.0.0.1"]);
    await admin.call("device/revoke", { device: phone.id });
  });

  it("a bad name for a code is refused with 400; a bogus code is 401 and peeks as unknown", async () => {
    const bad = await fetchOnce(`http://127.0.0.1:${port()}/session/code`, {
      method: "POST",
      headers: { Authorization: `Bearer ${ts.server.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "x".repeat(65) }),
    });
    expect(bad.status).toBe(400);
    expect((await redeem(port(), "bogus")).status).toBe(401);
    const origin = `http://127.0.0.1:${port()}`;
    const peek = await fetchOnce(`${origin}/session/peek`, {
      method: "POST",
      headers: { Origin: origin, "Content-Type": "application/json" },
      body: '{"code":"bogus"}',
    });
    expect(peek.status).toBe(404);
    // A code this server did not make but another server's mark is on: 421, naming the reason, on both doors.
    const foreign = `${"Zz9-_aB0"}.${"q".repeat(43)}`;
    const elsewhere = await fetchOnce(`${origin}/session/peek`, {
      method: "POST",
      headers: { Origin: origin, "Content-Type": "application/json" },
      body: JSON.stringify({ code: foreign }),
    });
    expect(elsewhere.status).toBe(421);
    expect(((await elsewhere.json()) as { error: string }).error).toMatch(/made by another Spool server/);
    expect((await redeem(port(), foreign)).status).toBe(421);
    // This server's own mark on a code it does not hold (spent, or never made): expired or used, as before.
    const { code } = (await (await mintCode(port(), ts.server.token)).json()) as { code: string };
    expect((await redeem(port(), code)).status).toBe(200);
    expect((await redeem(port(), code)).status).toBe(401);
    expect((await redeem(port(), `${code.split(".")[0]}.${"q".repeat(43)}`)).status).toBe(401);
  });
});

describe("sign-in bounds server-wide", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ limits: { maxCodes: 3, maxDevices: 2, maxCodesPerPrincipal: 8 } });
  });
  afterAll(() => ts.stop());

  it("past maxCodes a new code is refused (429, saying which limit), and nobody's waiting code is dropped; the home keeps its reserve", async () => {
    const admin = await ts.client();
    const { token } = await admin.call("token/create", { name: "signer", role: "person" });
    admin.close();
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(((await (await mintCode(ts.server.port, token)).json()) as { code: string }).code);
    const refused = await mintCode(ts.server.port, token);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: string }).error).toMatch(/limits\.maxCodes/);
    // Past maxDevices a pairing is refused too: the first two pair, the third code is refused and unpairs nobody.
    expect((await redeem(ts.server.port, codes[0]!)).status).toBe(200);
    expect((await redeem(ts.server.port, codes[1]!)).status).toBe(200);
    const third = await redeem(ts.server.port, codes[2]!);
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: string }).error).toMatch(/limits\.maxDevices/);
    // The home's token still mints and pairs, past both bounds (limits.homeReserve).
    const home = await pair(ts.server.port, ts.server.token, { name: "operator" });
    expect((await sessionOf(home)).status).toBe(200);
  });
});

/** GET /session as the device's page asks it, from another local address (the connection's source); its HTTP status. */
function sessionFrom(device: { origin: string; cookie: string; key: string }, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const asked = request(`${device.origin}/session`, { localAddress, headers: { Cookie: device.cookie, "Spool-Session-Key": device.key } }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    asked.on("error", reject);
    asked.end();
  });
}
