import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket as NodeWebSocket } from "ws";
import { connectBrowserWebSocket } from "../../src/client/browser-transport.js";
import { SpoolClient, SpoolRpcError } from "../../src/client/spool-client.js";
import { ENTRY } from "../../src/protocol/status.js";
import { proposalView } from "../../src/protocol/views.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * SpoolClient over the browser transport, as the web page runs it: against a real server, with the `ws`
 * package standing in for the browser's WebSocket (Node 20 has none; `ws` has the same event API), and
 * bundled for a browser without anything of Node.
 */
describe("SpoolClient over a browser WebSocket", () => {
  let ts: TestServer;
  const had = Object.getOwnPropertyDescriptor(globalThis, "WebSocket");

  beforeAll(async () => {
    ts = await startTestServer({ localRunner: false });
    Object.defineProperty(globalThis, "WebSocket", { value: NodeWebSocket, configurable: true, writable: true });
  });
  afterAll(async () => {
    if (had) Object.defineProperty(globalThis, "WebSocket", had);
    else delete (globalThis as { WebSocket?: unknown }).WebSocket;
    await ts?.stop();
  });

  const open = async () => new SpoolClient(await connectBrowserWebSocket(ts.server.url, ["spool", `spool.bearer.${ts.server.token}`]));

  it("initializes, calls typed methods, hears notifications, gets typed errors, sends bytes as input and reports the close", async () => {
    const client = await open();
    const init = await client.initialize("browser", { root: ts.root });
    expect(init.project.name).toBe("browser");
    await client.call("run/create", { alias: "b" });
    const proposed = client.next("run/proposal", (p) => p.run === "b");
    const { path } = await client.call("proposal/create", { run: "b", tool: "sh", sandbox: "full", command: "cat" });
    expect(proposalView(await proposed).producer).toMatchObject({ path, command: "cat", state: "proposed" });
    const error = await client.call("run/get", { run: "nope" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpoolRpcError);
    expect((error as SpoolRpcError).errorCode).toBe("NOT_FOUND");
    await client.call("run/resolve", { run: "b", path, decision: "accept", runner: "self" });
    // A self-owned producer's input comes back to its owner: the bytes arrive as sent, encoded without Buffer.
    const relayed = new Promise<{ data: string }>((resolve) => client.handle("producer/input", (p) => resolve(p)));
    await client.input("b", path, new Uint8Array([0, 104, 105, 255]));
    const got = await relayed;
    // The server relays input to the owner as base64.
    expect(Buffer.from(got.data, "base64")).toEqual(Buffer.from([0, 104, 105, 255]));
    const closed = new Promise<number>((resolve) => client.onClose((code) => resolve(code)));
    client.close();
    expect(await closed).toBe(1000);
    expect(client.closed).toBe(true);
  });

  it("a refused upgrade (a wrong token) rejects the connect", async () => {
    await expect(connectBrowserWebSocket(ts.server.url, ["spool", "spool.bearer.wrong"])).rejects.toThrow(/could not connect/);
  });

  it("bundles for a browser with nothing of Node: the Node transport is not followed", async () => {
    const client = fileURLToPath(new URL("../../src/client/", import.meta.url));
    const bundle = await build({
      stdin: {
        contents: `import { SpoolClient } from "./spool-client.js"; import { connectBrowserWebSocket } from "./browser-transport.js"; console.log(SpoolClient, connectBrowserWebSocket);`,
        resolveDir: client,
        loader: "ts",
      },
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
    });
    const js = bundle.outputFiles[0]!.text;
    expect(js).toContain("SpoolRpcError");
    expect(js).not.toMatch(/from\s*["']node:|\brequire\(["'](ws|node:)/);
    expect(ENTRY.streaming).toBe(102);
  });
});
