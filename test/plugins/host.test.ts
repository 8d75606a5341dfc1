import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { definePlugin } from "../../src/plugins/plugin.js";
import { defineMethod } from "../../src/rpc/method.js";
import { startTestServer, tempDir } from "../helpers/server.js";

const hello = (name: string) =>
  defineMethod({
    name,
    description: "says hello",
    params: z.strictObject({}),
    result: z.object({ hello: z.string() }),
    access: "none",
    handler: () => ({ hello: "world" }),
  });

describe("plugin host", () => {
  it("a missing dependency is an error naming both plugins", async () => {
    const orphan = definePlugin({ name: "orphan", dependencies: ["nowhere"], setup() {} });
    await expect(startTestServer({ extraPlugins: [orphan] })).rejects.toThrow('Plugin "orphan" depends on "nowhere", which is not registered');
  });

  it("a duplicate method is an error naming the plugin that owns it", async () => {
    const dup = definePlugin({ name: "dup", setup: (app) => app.method(hello("ping")) });
    await expect(startTestServer({ extraPlugins: [dup] })).rejects.toThrow(
      'Method "ping" registered by plugin "dup" is already registered by plugin "session"',
    );
  });

  it("an unknown hook name is an error listing the known ones", async () => {
    const bad = definePlugin({ name: "bad-hook", setup: (app) => app.on("no:such-hook" as never, () => {}) });
    await expect(startTestServer({ extraPlugins: [bad] })).rejects.toThrow(/unknown hook "no:such-hook"; known hooks: server:started/);
  });

  it("registration after start-up is refused", async () => {
    let saved: Parameters<Parameters<typeof definePlugin>[0]["setup"]>[0] | undefined;
    const late = definePlugin({ name: "late", setup: (app) => void (saved = app) });
    const ts = await startTestServer({ extraPlugins: [late] });
    try {
      expect(() => saved!.method(hello("late/method"))).toThrow('Plugin "late" cannot register method "late/method" after the server has started');
      expect(() => saved!.on("run:created", () => {})).toThrow(/after the server has started/);
    } finally {
      await ts.stop();
    }
  });

  it("dependencies are set up first, whatever the order given", async () => {
    const order: string[] = [];
    const b = definePlugin({ name: "b", dependencies: ["a"], setup: () => void order.push("b") });
    const a = definePlugin({ name: "a", setup: () => void order.push("a") });
    const ts = await startTestServer({ extraPlugins: [b, a] });
    await ts.stop();
    expect(order).toEqual(["a", "b"]);
  });

  it("filters run in priority order and hooks see events", async () => {
    const events: string[] = [];
    const plugin = definePlugin({
      name: "observer",
      dependencies: ["runs"],
      setup(app) {
        app.on("run:created", ({ run }) => void events.push(`created ${run.alias}`));
        app.filter("rpc:discover", (doc) => ({ ...doc, order: [...((doc.order as string[]) ?? []), "late"] }), 200);
        app.filter("rpc:discover", (doc) => ({ ...doc, order: [...((doc.order as string[]) ?? []), "early"] }), 10);
      },
    });
    const ts = await startTestServer({ extraPlugins: [plugin] });
    try {
      const c = await ts.clientIn("p");
      await c.call("run/create", { alias: "x" });
      expect(events).toEqual(["created x"]);
      expect((await c.call("rpc.discover", {})).order).toEqual(["early", "late"]);
    } finally {
      await ts.stop();
    }
  });

  it("loads an external plugin from a path given in configuration", async () => {
    const home = tempDir();
    const file = join(home, "greeter.mjs");
    const pluginModule = new URL("../../src/plugins/plugin.ts", import.meta.url).href;
    writeFileSync(
      file,
      `import { definePlugin } from ${JSON.stringify(pluginModule)};
       import { z } from "zod";
       export default definePlugin({ name: "greeter", setup(app) {
         app.method({ name: "greeter/hello", description: "hi", access: "none", params: z.strictObject({ who: z.string() }),
           result: z.object({ text: z.string() }), handler: ({ who }) => ({ text: "hello " + who }) });
       }});`,
    );
    writeFileSync(join(home, "config.json"), JSON.stringify({ plugins: ["./greeter.mjs"] }));
    const ts = await startTestServer({ home });
    try {
      const c = await ts.client();
      expect(await c.request("greeter/hello", { who: "spool" })).toEqual({ text: "hello spool" });
      expect(ts.server.plugins.loaded).toContain("greeter");
    } finally {
      await ts.stop();
    }
  });

  it("a plugin path that does not load is a clear start-up error", async () => {
    await expect(startTestServer({ plugins: ["./missing-plugin.mjs"] })).rejects.toThrow(/Cannot load plugin "\/.+\/missing-plugin\.mjs"/);
  });
});
