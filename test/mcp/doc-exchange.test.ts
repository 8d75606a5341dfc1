import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpoolClient } from "../../src/client/spool-client.js";
import { freePort, type ServeProcess, spawnServe } from "../helpers/process.js";
import { tempDir } from "../helpers/server.js";

/**
 * Issue 57.8: docs/mcp.md's whole 2026-07-28 approval — the tools/call with its headers (Mcp-Name among them), the
 * input_required answer, the retry with `inputResponses` and `requestState`, the result — run as written against a
 * real `spool serve`: each request sent from the doc's text (only the address, the credential and the state put in),
 * each answer checked against the doc's (`…` in a documented string stands for any text).
 */

const DOC = readFileSync(new URL("../../docs/mcp.md", import.meta.url), "utf8");

function block(tag: string): string {
  const found = new RegExp(`\`\`\`(?:http|json) ${tag}\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  if (!found) throw new Error(`docs/mcp.md has no \`\`\` ${tag} block`);
  return found[1]!;
}

/** An HTTP request as the doc writes it: request line, headers, a blank line, the JSON body. */
function request(tag: string): { path: string; headers: Record<string, string>; body: Record<string, unknown> } {
  const text = block(tag);
  const [head, body] = [text.slice(0, text.indexOf("\n\n")), text.slice(text.indexOf("\n\n") + 2)];
  const [requestLine, ...lines] = head.split("\n");
  const [method, path] = requestLine!.split(" ");
  expect(method).toBe("POST");
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]));
  return { path: path!, headers, body: JSON.parse(body) as Record<string, unknown> };
}

/** Whether `real` has the documented shape: the same keys, the same values, `…` in a string matching any text. */
function shapeOf(doc: unknown, real: unknown, where = "$"): string[] {
  if (typeof doc === "string" && doc.includes("…")) {
    const pattern = new RegExp(
      `^${doc
        .split("…")
        .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join("[\\s\\S]*")}$`,
    );
    return typeof real === "string" && pattern.test(real) ? [] : [`${where}: ${JSON.stringify(real)} is not ${JSON.stringify(doc)}`];
  }
  if (Array.isArray(doc)) {
    if (!Array.isArray(real) || real.length !== doc.length) return [`${where}: ${JSON.stringify(real)} is not an array of ${doc.length}`];
    return doc.flatMap((d, i) => shapeOf(d, real[i], `${where}[${i}]`));
  }
  if (doc !== null && typeof doc === "object") {
    if (real === null || typeof real !== "object") return [`${where}: ${JSON.stringify(real)} is not an object`];
    const keys = Object.keys(doc).sort();
    const realKeys = Object.keys(real).sort();
    if (JSON.stringify(keys) !== JSON.stringify(realKeys)) return [`${where}: keys ${realKeys.join(",")}, documented ${keys.join(",")}`];
    return keys.flatMap((k) => shapeOf((doc as Record<string, unknown>)[k], (real as Record<string, unknown>)[k], `${where}.${k}`));
  }
  return doc === real ? [] : [`${where}: ${JSON.stringify(real)} is not ${JSON.stringify(doc)}`];
}

/** The JSON-RPC response of an answer given as JSON or as an SSE stream (its last message with an id). */
async function response(answer: Response): Promise<Record<string, unknown>> {
  const text = await answer.text();
  if (!(answer.headers.get("content-type") ?? "").startsWith("text/event-stream")) return JSON.parse(text) as Record<string, unknown>;
  const messages = text
    .split("\n\n")
    .map((event) =>
      event
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n"),
    )
    .filter((d) => d !== "")
    .map((d) => JSON.parse(d) as Record<string, unknown>);
  return messages.filter((m) => "id" in m).at(-1)!;
}

describe("docs/mcp.md's 2026-07-28 approval, run as written", () => {
  let server: ServeProcess;
  let port: number;
  let project: string;
  let alice: string;

  beforeAll(async () => {
    const home = tempDir("spool-mcp-doc-home-");
    project = join(tempDir("spool-mcp-doc-"), "myapp");
    mkdirSync(join(project, ".git"), { recursive: true });
    port = await freePort();
    server = await spawnServe(["--port", String(port), "--home", home]);
    const admin = await SpoolClient.connect(server.url, { token: readFileSync(join(home, "token"), "utf8").trim() });
    await admin.initialize(undefined, { root: project });
    alice = (await admin.call("token/create", { name: "alice", role: "person" })).token;
    admin.close();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  /** Sends the doc's request `tag` to this server: its address and project, alice's token, and the state given in its body. */
  function send(tag: string, change: { drop?: string; state?: string } = {}): Promise<Response> {
    const { path, headers, body } = request(tag);
    expect(headers.Host).toBe("127.0.0.1:7420");
    const sent: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers))
      if (name !== "Host" && name !== change.drop) sent[name] = name === "Authorization" ? value.replace("YOUR-PERSON-TOKEN", alice) : value;
    const params = body.params as Record<string, unknown>;
    if (change.state !== undefined) {
      expect(params.requestState).toBe("THE-REQUESTSTATE-OF-THE-ANSWER");
      params.requestState = change.state;
    }
    const url = `http://127.0.0.1:${port}${path.replace("project=myapp", `root=${encodeURIComponent(project)}`)}`;
    return fetch(url, { method: "POST", headers: sent, body: JSON.stringify(body) });
  }

  it("the tools/call without Mcp-Name is refused; with the doc's headers it asks, and the retry with inputResponses and requestState runs it", async () => {
    // The header the doc says a tools/call needs: without it, 400 and no proposal.
    const without = await send("mcp-2026-ask", { drop: "Mcp-Name" });
    expect(without.status).toBe(400);
    expect(JSON.stringify(await without.json())).toContain("Mcp-Name is missing");

    const asked = await send("mcp-2026-ask");
    expect(asked.status).toBe(200);
    const first = await response(asked);
    expect(shapeOf(JSON.parse(block("mcp-2026-asked")), first)).toEqual([]);
    const state = (first.result as { requestState: string }).requestState;

    const answered = await send("mcp-2026-answer", { state });
    expect(answered.status).toBe(200);
    const done = await response(answered);
    expect(shapeOf(JSON.parse(block("mcp-2026-done")), done)).toEqual([]);

    // As the doc says: the state again decides nothing and runs nothing.
    const again = await response(await send("mcp-2026-answer", { state }));
    expect((again.error as { code: number }).code).toBe(-32602);
  }, 90_000);
});
