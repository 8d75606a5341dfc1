import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../src/client/spool-client.js";
import { PRE_AUTH_HARD_FACTOR } from "../src/server/transports.js";
import { type ServeProcess, spawnServe } from "./helpers/process.js";
import { tempDir } from "./helpers/server.js";

const opened = (port: number) =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });

/**
 * Issue 48, point 6: a burst of clients from one address (the load bench's 60, a CI fleet behind one NAT) all get
 * in through the proof handshake over TCP; the caps on connections that have not authenticated close idle ones only.
 */
describe("a burst of clients from one address, against a spool serve process", () => {
  const servers: ServeProcess[] = [];
  afterAll(async () => {
    for (const server of servers) await server.stop();
  });

  async function serve(limits: object = {}): Promise<{ url: string; port: number; token: string }> {
    const home = tempDir("spool-burst-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ limits }));
    const server = await spawnServe(["--home", home, "--port", "0"], { SPOOL_LOCAL_RUNNER: "off" });
    servers.push(server);
    return { url: server.url, port: Number(new URL(server.url).port), token: readFileSync(join(home, "token"), "utf8").trim() };
  }

  for (const perAddress of [32, 16]) {
    it(`sixty clients through the proof handshake at once all connect (the per-address cap ${perAddress === 32 ? "is" : "set to"} ${perAddress})`, async () => {
      const { url, token } = await serve(perAddress === 32 ? {} : { maxUnauthenticatedPerAddress: perAddress });
      const settled = await Promise.allSettled(Array.from({ length: 60 }, () => SpoolClient.connect(url, { token })));
      const clients = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      try {
        const failed = settled.flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []));
        expect(failed, failed.slice(0, 3).join("\n")).toEqual([]);
        const pongs = await Promise.all(clients.map((c) => c.call("ping", {})));
        expect(pongs.filter((p) => p.pong)).toHaveLength(60);
      } finally {
        for (const c of clients) c.close();
      }
    }, 120_000);
  }

  it("connections that only sit there are still bounded: in their grace, at most PRE_AUTH_HARD_FACTOR times the per-address cap, the oldest closed first", async () => {
    const perAddress = 4;
    const { url, port, token } = await serve({ maxUnauthenticatedConnections: 8, maxUnauthenticatedPerAddress: perAddress, authDeadlineMs: 60_000 });
    const idle: Socket[] = [];
    let closed = 0;
    let enough!: () => void;
    const enoughClosed = new Promise<void>((resolve) => (enough = resolve));
    const flood = 40;
    const kept = perAddress * PRE_AUTH_HARD_FACTOR;
    try {
      for (let i = 0; i < flood; i++) {
        const socket = await opened(port);
        socket.once("close", () => {
          if (++closed === flood - kept) enough();
        });
        idle.push(socket);
      }
      await enoughClosed;
      // The oldest went: the newest are the ones kept.
      expect(idle.slice(-kept).every((s) => !s.destroyed)).toBe(true);
      const client = await SpoolClient.connect(url, { token });
      expect(await client.call("ping", {})).toMatchObject({ pong: true });
      client.close();
    } finally {
      for (const socket of idle) socket.destroy();
    }
  }, 120_000);
});
