import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { credentialId, tokenVerifier } from "../../src/client/server-proof.js";
import { answerProof } from "../../src/server/transports.js";
import { spawnCli } from "../helpers/process.js";
import { ScriptedModel } from "../helpers/scripted-model.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const count = (text: string, part: string) => text.split(part).length - 1;

/**
 * A WebSocket proxy in front of the server that holds back run/create's answer until a run/progress
 * notification has passed: the order a fast model gives when the server is busy.
 */
async function progressFirstProxy(upstream: string, token: string): Promise<{ url: string; close: () => Promise<void> }> {
  // A TCP client asks the server it dials to prove it holds the token first (src/client/server-proof.ts): this one does.
  const http = createServer((request, response) => answerProof(request, response, (id) => (id === credentialId(token) ? tokenVerifier(token) : null)));
  const wss = new WebSocketServer({ server: http });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", () => resolve()));
  wss.on("connection", (client, request) => {
    const server = new WebSocket(upstream, { headers: { authorization: request.headers.authorization ?? "" } });
    const toServer: [RawData, boolean][] = [];
    let createId: unknown;
    let held: [RawData, boolean] | null = null;
    let progressed = false;
    client.on("message", (data, binary) => {
      if (!binary) {
        const message = JSON.parse(data.toString());
        if (message.method === "run/create") createId = message.id;
      }
      if (server.readyState === WebSocket.OPEN) server.send(data, { binary });
      else toServer.push([data, binary]);
    });
    server.on("open", () => {
      for (const [data, binary] of toServer.splice(0)) server.send(data, { binary });
    });
    server.on("message", (data, binary) => {
      const message = binary ? null : JSON.parse(data.toString());
      if (message && createId !== undefined && message.id === createId && !progressed) {
        held = [data, binary];
        return;
      }
      client.send(data, { binary });
      if (message?.method === "run/progress" && !progressed) {
        progressed = true;
        if (held) client.send(held[0], { binary: held[1] });
      }
    });
    client.on("close", () => server.close());
    server.on("close", () => client.close());
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => wss.close(() => http.close(() => resolve()))),
  };
}

describe("spool ask / act print the model's final text once", () => {
  let model: ScriptedModel;
  let ts: TestServer;
  const connection = () => ["--server", ts.server.url, "--token-file", ts.server.config.tokenFile, "--project", "cli-text"];
  beforeAll(async () => {
    model = await ScriptedModel.start();
    ts = await startTestServer({ env: { SPOOL_MODEL_TEST: "openai/test-model", OPENAI_BASE_URL: model.baseUrl } });
    (await ts.clientIn("cli-text")).close();
  });
  afterAll(async () => {
    await ts.stop();
    await model.close();
  });

  it("a text answer is streamed and not printed again as the summary", async () => {
    const answer = "The project builds with make; the tests run with make check.";
    model.reply({ text: answer });
    const cli = spawnCli(["ask", "how do I build it?", "--model", "test", "--run", "text-once", ...connection()]);
    expect(await cli.exit).toBe(0);
    expect(count(cli.stdout(), answer)).toBe(1);
    expect(cli.stdout()).toMatch(/✔ done\n/);
  }, 120_000);

  it("a summary given with done, different from the streamed text, is still shown", async () => {
    model.reply({ text: "Let me finish. ", tools: [{ id: "call_done", name: "done", arguments: { summary: "nothing to do" } }] });
    const cli = spawnCli(["ask", "anything to do?", "--model", "test", "--run", "text-summary", ...connection()]);
    expect(await cli.exit).toBe(0);
    expect(count(cli.stdout(), "Let me finish.")).toBe(1);
    expect(cli.stdout()).toContain("✔ done: nothing to do");
  }, 120_000);

  it("an answer retried after a cut connection is shown once", async () => {
    const answer = "Everything is up to date, nothing needs to change here.";
    model.reply({ text: answer, cutAfter: 3 }, { text: answer });
    const cli = spawnCli(["ask", "status?", "--model", "test", "--run", "text-cut", ...connection()]);
    expect(await cli.exit).toBe(0);
    expect(count(cli.stdout(), answer)).toBe(1);
  }, 120_000);

  it("the run's first line comes before the model's text, even when the text arrives before run/create's answer", async () => {
    const answer = "Nothing to build: the project is a single script.";
    model.reply({ text: answer });
    const proxy = await progressFirstProxy(ts.server.url, ts.server.token);
    try {
      const cli = spawnCli(["ask", "build?", "--model", "test", "--run", "text-early", ...connection().slice(2), "--server", proxy.url]);
      expect(await cli.exit).toBe(0);
      expect(cli.stdout()).toBe(`run text-early\n${answer}\n✔ done\n`);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
