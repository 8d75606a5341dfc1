import { PassThrough } from "node:stream";
import { Server } from "@modelcontextprotocol/server";
import { describe, expect, it } from "vitest";
import type { McpCaller } from "../../src/mcp/spool/caller.js";
import type { ModernMcp } from "../../src/mcp/stateless/modern.js";
import { MAX_LINE, MAX_UNDER_WAY, StdioServer } from "../../src/mcp/stdio.js";

// How `spool mcp` reads stdin: a line is one message, whatever the chunks its bytes came in; a line longer than any
// message may be ends the connection (its buffer is bounded), and so are the requests under way at once.

const META = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} };

/** `answer` answers each tools/list (by default at once); `wrote` is told of each line written. */
function serverOver(input: PassThrough, answer: () => Promise<unknown> = async () => undefined, wrote: () => void = () => undefined) {
  const seen: unknown[] = [];
  const written: string[] = [];
  // The 2026-07-28 side as serveStdio serves it: a server that keeps what it was asked.
  const modern = {
    stdioServer: () => {
      const server = new Server({ name: "spool", version: "test" }, { capabilities: { tools: {} } });
      server.setRequestHandler("tools/list", async (request) => {
        seen.push(request);
        await answer();
        return { tools: [] };
      });
      return server;
    },
    hold: () => null,
    closing: () => undefined,
    close: async () => undefined,
  } as unknown as ModernMcp;
  const server = new StdioServer({
    input,
    write: (line) => {
      written.push(line);
      wrote();
    },
    legacy: () => {
      throw new Error("no 2025-11-25 session in this test");
    },
    modern,
    caller: {} as McpCaller,
    target: { project: {}, mode: "act" },
    log: { info() {}, warn() {}, debug() {} } as never,
  });
  return { server, seen, written, served: server.serve() };
}

describe("spool mcp's stdin", () => {
  it("a character split between two chunks arrives whole", async () => {
    const input = new PassThrough();
    const { seen, served } = serverOver(input);
    const text = "é".repeat(50_000);
    const bytes = Buffer.from(`${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: META, cursor: text } })}\n`);
    // Cut inside the two bytes of an é.
    const cut = bytes.indexOf(Buffer.from("é")) + 1;
    input.write(bytes.subarray(0, cut));
    input.write(bytes.subarray(cut));
    input.end();
    await served;
    expect(seen).toHaveLength(1);
    expect(JSON.stringify(seen[0])).toContain(text);
    expect(JSON.stringify(seen[0])).not.toContain("\ufffd");
  });

  it("a line longer than any message ends the connection with an error, nothing taken from it", async () => {
    const input = new PassThrough();
    const { seen, written, served } = serverOver(input);
    input.write(Buffer.alloc(MAX_LINE + 1, "x"));
    await served;
    expect(seen).toEqual([]);
    expect(JSON.parse(written[0]!)).toMatchObject({ id: null, error: { code: -32600 } });
  });

  it(`${MAX_UNDER_WAY} requests under way at most: the next is refused until one is answered`, async () => {
    const input = new PassThrough();
    const answers: (() => void)[] = [];
    let changed = () => {};
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise<void>((resolve) => (changed = resolve));
    };
    const { seen, written, served } = serverOver(
      input,
      () =>
        new Promise<void>((resolve) => {
          answers.push(resolve);
          changed();
        }),
      () => changed(),
    );
    const line = (id: number) => `${JSON.stringify({ jsonrpc: "2.0", id, method: "tools/list", params: { _meta: META } })}\n`;
    for (let id = 1; id <= MAX_UNDER_WAY + 1; id++) input.write(line(id));
    await until(() => written.length === 1 && answers.length === MAX_UNDER_WAY);
    expect(JSON.parse(written[0]!)).toEqual({
      jsonrpc: "2.0",
      id: MAX_UNDER_WAY + 1,
      error: { code: -32603, message: `Too many MCP requests under way (${MAX_UNDER_WAY}); retry when one ends` },
    });
    answers[0]!();
    await until(() => written.length === 2);
    expect(JSON.parse(written[1]!)).toMatchObject({ id: 1, result: { tools: [] } });
    input.write(line(MAX_UNDER_WAY + 2));
    await until(() => seen.length === MAX_UNDER_WAY + 1);
    for (const a of answers) a();
    input.end();
    await served;
    expect(written.filter((w) => JSON.parse(w).error)).toHaveLength(1);
  }, 15_000);
});
