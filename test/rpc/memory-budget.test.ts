import { describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { ClientMemory, HOME_GROUP, type MemoryHolder } from "../../src/rpc/budget.js";
import { startTestServer } from "../helpers/server.js";

/** A connection's stand-in: holds what it is told, closes when evicted. */
function holder(memory: ClientMemory, id: string, group: string) {
  let held = 0;
  const h: MemoryHolder & { hold(bytes: number): void; evicted: string | null } = {
    id,
    group,
    evicted: null,
    get held() {
      return held;
    },
    get closing() {
      return h.evicted !== null;
    },
    evict(reason) {
      h.evicted = reason;
    },
    hold(bytes) {
      held += bytes;
      memory.change(bytes);
    },
  };
  memory.add(h);
  return h;
}

describe("the server's memory budget takes from the principal holding the most", () => {
  it("one principal's many connections give before another's single larger one; the home's give last", () => {
    const memory = new ClientMemory(1000);
    const spread = ["a1", "a2", "a3", "a4"].map((id) => holder(memory, id, "share-a"));
    const single = holder(memory, "b1", "share-b");
    const home = holder(memory, "h1", HOME_GROUP);
    home.hold(300);
    single.hold(250);
    for (const h of spread) h.hold(120);
    // 300 + 250 + 480 = 1030: over. share-a holds 480 (its largest 120); share-b 250 in one connection.
    expect(single.evicted).toBeNull();
    expect(home.evicted).toBeNull();
    expect(spread.filter((h) => h.evicted !== null)).toHaveLength(1);
    expect(spread.find((h) => h.evicted)!.evicted).toMatch(/this connection's principal holds the most \(480\), this connection 120 of it/);
  });

  it("when the home alone holds too much, its connection gives first and nobody else's is closed for nothing", () => {
    const memory = new ClientMemory(500);
    const home = holder(memory, "h1", HOME_GROUP);
    const other = holder(memory, "o1", "share-o");
    other.hold(10);
    home.hold(600);
    expect(home.evicted).not.toBeNull();
    expect(other.evicted).toBeNull();
  });

  it("a connection with a minted credential counts against its principal's share; the home token's against the home's", async () => {
    const ts = await startTestServer({ localRunner: false });
    try {
      const admin = await ts.clientIn("app");
      const { token, principal } = await admin.call("token/create", { name: "watcher", role: "viewer", projects: ["app"] });
      const c = await SpoolClient.connect(ts.server.url, { token });
      await c.initialize("app");
      const sides = [...ts.server.rpc.connections];
      const mine = sides.find((s) => s.principal.name === principal.name)!;
      expect(mine.group).toBe(token.split("_")[1]);
      expect(sides.find((s) => s.principal.name === "admin" && s.via === "tcp")!.group).toBe(HOME_GROUP);
      c.close();
    } finally {
      await ts.stop();
    }
  });
});
