import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ElicitRequestSchema, type ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { SPOOL_BIN, stoppedAfterTheFile } from "../helpers/process.js";

/** An elicitation `spool mcp` sent; the test answers it or sees it withdrawn. */
export interface Elicitation {
  message: string;
  /** Aborted when the server withdraws it (notifications/cancelled). */
  signal: AbortSignal;
  answer(result: ElicitResult): void;
}

export interface McpProcess {
  client: Client;
  transport: StdioClientTransport;
  elicitations: Elicitation[];
  /** Resolves with the next elicitation not taken yet. */
  elicitation(timeoutMs?: number): Promise<Elicitation>;
  stderr(): string;
  close(): Promise<void>;
}

/** `spool mcp` as a subprocess, driven by the MCP SDK's own Client over StdioClientTransport. */
export async function startMcp(options: { args: string[]; env: Record<string, string>; name?: string; elicitation?: boolean }): Promise<McpProcess> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [SPOOL_BIN, "mcp", ...options.args],
    env: { ...(process.env as Record<string, string>), SPOOL_LOG: "info", ...options.env },
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const client = new Client(
    { name: options.name ?? "test-agent", version: "1.0.0" },
    { capabilities: options.elicitation ? { elicitation: { form: {} } } : {} },
  );
  const elicitations: Elicitation[] = [];
  const waiters: (() => void)[] = [];
  if (options.elicitation) {
    client.setRequestHandler(
      ElicitRequestSchema,
      (request, extra) =>
        new Promise<ElicitResult>((resolve) => {
          elicitations.push({ message: String(request.params.message), signal: extra.signal, answer: resolve });
          for (const w of waiters.splice(0)) w();
        }),
    );
  }
  await client.connect(transport);
  client.onerror = (error) => (stderr += `[client error] ${error.message}\n`);
  (transport as unknown as { _process?: import("node:child_process").ChildProcess })._process?.on(
    "exit",
    (code, signal) => (stderr += `[exit ${code} ${signal}]\n`),
  );
  const onclose = client.onclose;
  let closed!: () => void;
  const ended = new Promise<void>((resolve) => (closed = resolve));
  client.onclose = () => {
    stderr += "[client closed]\n";
    onclose?.();
    closed();
  };
  // A `spool mcp` its test left running is closed after the file's tests (closing the transport ends the process).
  stoppedAfterTheFile({ stop: () => client.close() }, ended);
  let taken = 0;
  return {
    client,
    transport,
    elicitations,
    elicitation: (timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for an elicitation; stderr:\n${stderr}`)), timeoutMs);
        const look = () => {
          const next = elicitations[taken];
          if (next) {
            taken++;
            clearTimeout(timer);
            resolve(next);
          } else waiters.push(look);
        };
        look();
      }),
    stderr: () => stderr,
    close: () => client.close(),
  };
}

/** The text of a tool result's content. */
export const resultText = (result: object) =>
  (((result as { content?: unknown }).content ?? []) as { type: string; text?: string }[]).map((c) => (c.type === "text" ? c.text : "")).join("\n");
