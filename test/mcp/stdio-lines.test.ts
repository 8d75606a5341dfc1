import { PassThrough } from "node:stream";
import { Server } from "@modelcontextprotocol/server";
import { describe, expect, it } from "vitest";
import type { McpCaller } from "../../src/mcp/caller.js";
import type { ModernMcp } from "../../src/mcp/modern.js";
import { MAX_LINE, StdioServer } from "../../src/mcp/stdio.js";

// How `spool mcp` reads stdin: a line is one message, whatever the chunks its bytes came in; a line longer than any
// message may be ends the connection (its buffer is bounded).

const META = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} };

function serverOver(input: PassThrough) {
  const seen: unknown[] = [];
  const written: string[] = [];
  // The 2026-07-28 side as serveStdio serves it: a server that keeps what it was asked.
  const modern = {
    stdioServer: () => {
      const server = new Server({ name: "spool", version: "test" }, { capabilities: { tools: {} } });
      server.setRequestHandler("tools/list", (request) => {
        seen.push(request);
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
    write: (line) => written.push(line),
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
});
