import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { startTestServer } from "../helpers/server.js";

describe("the PLUGINS.md example plugin", () => {
  it("loads from a path, counts runs per project through its hook, and answers its method", async () => {
    const path = fileURLToPath(new URL("../../examples/run-counter.ts", import.meta.url));
    const ts = await startTestServer({ plugins: [path] });
    try {
      const a = await ts.clientIn("a");
      const b = await ts.clientIn("b");
      await a.call("run/create", {});
      await a.call("run/create", {});
      await b.call("run/create", {});
      expect(await a.request("runCounter/get")).toEqual({ created: 2 });
      expect(await b.request("runCounter/get")).toEqual({ created: 1 });
      expect(ts.server.plugins.loaded).toContain("run-counter");
    } finally {
      await ts.stop();
    }
  });
});
