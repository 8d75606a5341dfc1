// `npm run demo`: a whole agent run in one terminal, with nothing to install
// or configure. It starts a Spool server (temporary home, free port, the
// embedded local runner) and a SCRIPTED demo model: a tiny local HTTP server
// speaking the OpenAI chat-completions API whose answers are written below.
// No real model is called. Then it drives `spool act` against them.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../src/cli/main.js";
import { createLogger } from "../src/logger.js";
import { startServer } from "../src/server/server.js";

type Message = { role: string; content: string | null; tool_call_id?: string };

/** The scripted model: first it proposes a command, then it reads the command's output and finishes. */
function scriptedAnswer(messages: Message[]): { text: string; tool?: { name: string; arguments: object } } {
  const result = messages.find((m) => m.role === "tool" && m.tool_call_id === "demo_call_1")?.content;
  if (!result) {
    return {
      text: "[scripted demo model] I'll look at the project and count its lines of notes. ",
      tool: {
        name: "sh",
        arguments: { command: "ls; for i in 1 2 3; do echo \"step $i of 3\"; sleep 0.4; done; wc -l notes.txt; echo 'a warning on stderr' >&2" },
      },
    };
  }
  if (!messages.some((m) => m.role === "tool" && m.tool_call_id === "demo_call_2")) {
    const exit = /exit code: (\d+)/.exec(result)?.[1] ?? "?";
    const count = /(\d+) notes\.txt/.exec(result)?.[1] ?? "?";
    return {
      text: `[scripted demo model] I read the output: the command exited ${exit}, and notes.txt has ${count} lines. `,
      tool: { name: "done", arguments: { summary: `notes.txt has ${count} lines (read from the command's output)` } },
    };
  }
  return { text: "" };
}

const model = createServer((req, res) => {
  // The model list (GET /v1/models), which the agent reads for the model's context window.
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ object: "list", data: [{ id: "scripted-demo-model", object: "model", created: 0, owned_by: "spool-demo" }] }));
    return;
  }
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", async () => {
    const { messages } = JSON.parse(body) as { messages: Message[] };
    const answer = scriptedAnswer(messages);
    const calls = messages.filter((m) => m.role === "tool").length;
    res.writeHead(200, { "content-type": "text/event-stream" });
    const send = (delta: object, finish: string | null = null) =>
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
    for (const word of answer.text.split(/(?<= )/)) {
      send({ content: word });
      await new Promise((r) => setTimeout(r, 40)); // streamed word by word, like a real model
    }
    if (answer.tool)
      send({
        tool_calls: [
          { index: 0, id: `demo_call_${calls + 1}`, type: "function", function: { name: answer.tool.name, arguments: JSON.stringify(answer.tool.arguments) } },
        ],
      });
    send({}, answer.tool ? "tool_calls" : "stop");
    res.end("data: [DONE]\n\n");
  });
});
await new Promise<void>((resolve) => model.listen(0, "127.0.0.1", () => resolve()));
const modelUrl = `http://127.0.0.1:${(model.address() as AddressInfo).port}/v1`;

// The project beside the home, not in it: a project rooted in the Spool home is refused.
const scratch = mkdtempSync(join(tmpdir(), "spool-demo-"));
const home = join(scratch, "home");
const project = join(scratch, "project");
// Private from the start (0700, as the server wants a home): no warning about making it so.
mkdirSync(home, { mode: 0o700 });
mkdirSync(project);
writeFileSync(join(project, "notes.txt"), "buy milk\nwrite the demo\nship it\n");
writeFileSync(join(project, "README.md"), "# a demo project\n");
// The CLI runs in the project's directory.
process.chdir(project);

const server = await startServer({
  home,
  port: 0,
  logger: createLogger("warn"),
  env: { SPOOL_MODEL_DEMO: "openai/scripted-demo-model", OPENAI_BASE_URL: modelUrl },
  // Long enough that the model reads the command's end, not a "still running" (a busy machine took the command past 5 s).
  agent: { toolYieldMs: 60_000 },
});
process.stdout.write(
  `Spool demo: a server on ${server.url}, the embedded local runner, and a SCRIPTED demo model at ${modelUrl}\n` +
    "(its answers are fixed in scripts/demo.ts; no real model is called). The project is a temporary folder.\n\n",
);
const connection = ["--server", server.url, "--token-file", join(home, "token")];
let code = 1;
try {
  // The project's root is the temporary folder: `spool init` there names it and registers it with the server.
  code = await main(["init", "demo", ...connection]);
  if (code === 0)
    code = await main([
      "act",
      "How many notes are there?",
      "--model",
      "demo",
      "--run",
      "demo",
      ...connection,
      ...(process.stdin.isTTY && !process.argv.includes("--yes") ? [] : ["--yes"]),
    ]);
} finally {
  await server.stop();
  model.close();
  rmSync(scratch, { recursive: true, force: true });
}
process.exitCode = code;
