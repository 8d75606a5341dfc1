import { createServer, type Server } from "node:http";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { McpHttpEndpoint } from "../../src/mcp/http.js";
import type { ExtraCall, ExtraTool, McpExtras } from "../../src/mcp/spool/extras.js";
import { refusedOrigin } from "../../src/server/server.js";

/*
 * The official MCP conformance suite's fixture (its "everything server"'s tools and resources that need no
 * client request of their own), registered on Spool's own MCP layer: an McpHttpEndpoint (src/mcp/http.ts, both
 * revisions: 2025-11-25 sessions and 2026-07-28 requests) with these as its extras (src/mcp/spool/extras.ts), a client
 * of a real `spool serve`, so the suite scores Spool's MCP as a whole (its tools, resources, errors, streams and
 * era routing) and not a stand-in. Test code: the product registers no extras. What the suite's other fixtures
 * need (prompts, completions, input_required of a tool's own, tasks of a tool's own, a tool that closes its stream) Spool's
 * layer does not offer: conformance-expected-failures*.yml says so, with the reason. Over 2026-07-28 the tools that
 * ask the client something get Spool's refusal (that revision sends no request to the client).
 */

/** A 1×1 red PNG. */
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/** A WAV header with no samples (8 kHz, 8-bit mono). */
const WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] });
const tool = (description: string, run: (call: ExtraCall) => Promise<CallToolResult>): ExtraTool => ({
  description,
  shape: {},
  run: (_args, call) => run(call),
});
/** A tool that asks the client to fill in `schema` (elicitation/create) and says what it answered. */
const elicits = (description: string, schema: Record<string, unknown>, message: string): ExtraTool =>
  tool(description, async (call) => {
    const answer = await call.sendRequest({ method: "elicitation/create", params: { message, requestedSchema: schema } });
    return text(`Elicitation completed: action=${String(answer.action)}, content=${JSON.stringify(answer.content ?? {})}`);
  });
const titled = (prefix: string, word: string) => ["First", "Second", "Third"].map((n, i) => ({ const: `${prefix}${i + 1}`, title: `${n} ${word}` }));

export const FIXTURE: McpExtras = {
  tools: {
    test_simple_text: tool("Returns simple text", async () => text("This is a simple text response for testing.")),
    test_image_content: tool("Returns an image", async () => ({ content: [{ type: "image", data: PNG, mimeType: "image/png" }] })),
    test_audio_content: tool("Returns audio", async () => ({ content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] })),
    test_embedded_resource: tool("Returns an embedded resource", async () => ({
      content: [{ type: "resource", resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." } }],
    })),
    test_multiple_content_types: tool("Returns text, an image and a resource", async () => ({
      content: [
        { type: "text", text: "Multiple content types test:" },
        { type: "image", data: PNG, mimeType: "image/png" },
        { type: "resource", resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: '{"test":"data","value":123}' } },
      ],
    })),
    test_error_handling: tool("Returns an error result", async () => ({
      content: [{ type: "text", text: "This tool intentionally returns an error for testing" }],
      isError: true,
    })),
    test_tool_with_progress: tool("Reports progress 0, 50, 100 of 100", async (call) => {
      const token = call._meta?.progressToken;
      for (const progress of [0, 50, 100]) {
        if (token !== undefined) await call.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress, total: 100 } });
        if (progress < 100) await pause(50);
      }
      return text("Progress tool completed");
    }),
    test_tool_with_logging: tool("Sends three log messages", async (call) => {
      for (const [n, data] of ["Tool execution started", "Tool processing data", "Tool execution completed"].entries()) {
        if (n > 0) await pause(50);
        await call.sendNotification({ method: "notifications/message", params: { level: "info", data } });
      }
      return text("Logging tool completed");
    }),
    test_sampling: {
      description: "Asks the client's model (sampling/createMessage)",
      shape: { prompt: z.string() },
      async run(args, call) {
        const answer = await call.sendRequest({
          method: "sampling/createMessage",
          params: { messages: [{ role: "user", content: { type: "text", text: String(args.prompt) } }], maxTokens: 100 },
        });
        const content = answer.content as { text?: unknown } | undefined;
        return text(`LLM response: ${String(content?.text ?? "")}`);
      },
    },
    test_elicitation: {
      description: "Asks the user for a username and an email (elicitation/create)",
      shape: { message: z.string() },
      run: (args, call) =>
        elicits(
          "",
          {
            type: "object",
            properties: { username: { type: "string", description: "User's response" }, email: { type: "string", description: "User's email address" } },
            required: ["username", "email"],
          },
          String(args.message),
        ).run({}, call),
    },
    test_elicitation_sep1034_defaults: elicits(
      "Elicits every primitive type with a default (SEP-1034)",
      {
        type: "object",
        properties: {
          name: { type: "string", default: "John Doe" },
          age: { type: "integer", default: 30 },
          score: { type: "number", default: 95.5 },
          status: { type: "string", enum: ["active", "inactive", "pending"], default: "active" },
          verified: { type: "boolean", default: true },
        },
      },
      "Please review and update the form fields with defaults",
    ),
    test_elicitation_sep1330_enums: elicits(
      "Elicits the five kinds of enum (SEP-1330)",
      {
        type: "object",
        properties: {
          untitledSingle: { type: "string", enum: ["option1", "option2", "option3"] },
          titledSingle: { type: "string", oneOf: titled("value", "Option") },
          legacyEnum: { type: "string", enum: ["opt1", "opt2", "opt3"], enumNames: ["Option One", "Option Two", "Option Three"] },
          untitledMulti: { type: "array", items: { type: "string", enum: ["option1", "option2", "option3"] } },
          titledMulti: { type: "array", items: { anyOf: titled("value", "Choice") } },
        },
      },
      "Please select options from the enum fields",
    ),
  },
  resources: {
    listed: [
      { uri: "test://static-text", name: "static-text", mimeType: "text/plain" },
      { uri: "test://static-binary", name: "static-binary", mimeType: "image/png" },
    ],
    templates: [{ uriTemplate: "test://template/{id}/data", name: "template-data", mimeType: "application/json" }],
    read(uri) {
      if (uri === "test://watched-resource") return [{ uri, mimeType: "text/plain", text: "Watched resource content" }];
      if (uri === "test://static-text") return [{ uri, mimeType: "text/plain", text: "This is the content of the static text resource." }];
      if (uri === "test://static-binary") return [{ uri, mimeType: "image/png", blob: PNG }];
      const id = /^test:\/\/template\/([^/]+)\/data$/.exec(uri)?.[1];
      if (id !== undefined) return [{ uri, mimeType: "application/json", text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }];
      return null;
    },
  },
};

/**
 * Spool's /mcp with the fixture, on a port of its own (127.0.0.1), a client of the Spool server at `serverUrl`
 * with `token` (the suite sends no credential: every request is this token's, an admin's), working in the
 * project at `root` (the suite drops a URL's query in some probes: /mcp's project is set here instead).
 */
export async function startFixture(serverUrl: string, token: string, root: string): Promise<{ url: string; close(): Promise<void> }> {
  const endpoint = new McpHttpEndpoint({
    authenticate: async () => ({ name: "conformance", role: "admin", credential: token, expiresAt: null }),
    refusedOrigin: (request) => refusedOrigin(request, [], []),
    serverUrl: () => serverUrl,
    version: "conformance-fixture",
    log: { info: () => undefined, warn: (message) => console.warn(message) },
    extras: FIXTURE,
  });
  const server: Server = createServer((request, response) => {
    if (new URL(request.url ?? "/", "http://localhost").pathname !== "/mcp") return void response.writeHead(404).end();
    request.url = `/mcp?root=${encodeURIComponent(root)}`;
    endpoint.handle(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://localhost:${(server.address() as { port: number }).port}/mcp`,
    async close() {
      await endpoint.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
