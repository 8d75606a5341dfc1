import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { factValue, proposalFacts } from "../../../src/protocol/proposal-facts.js";
import { ENTRY } from "../../../src/protocol/status.js";
import { initialize, spawnAcp } from "../../acp/harness.js";
import { describeWithBrowser, useBrowser } from "../../helpers/browser.js";
import { spawnCli } from "../../helpers/process.js";
import { bwrapMissing, describeWithBwrap } from "../../helpers/sandbox.js";
import { eventually } from "../../helpers/server.js";
import { resultText, startMcp } from "../../mcp/harness.js";

/**
 * A proposal asking for a host beyond the project's network allowlist (SPEC §7 Runners, "Network mode allowlist")
 * shows it in every client before the decision, as the one formatter writes it: `spool pending`, the web card in
 * Chromium, an MCP client's elicitation (`spool mcp`) and an ACP editor's permission request (`spool acp`), each a
 * real process or page against one server whose embedded bubblewrap runner enforces the list.
 */

const SHOWN = "allowlist (registry.test, *.github.test, +1 asked: extra.test)";

/** The `network` line of a block of facts as the terminal clients print it (label padded to ten, two spaces). */
const networkLine = (text: string) => /^ *network {5}(.*)$/m.exec(text)?.[1];

/** Needs Chromium, and bubblewrap for the embedded runner to enforce the list (else allow_hosts is UNSUPPORTED). */
const describeHere = bwrapMissing() ? describeWithBwrap : describeWithBrowser;

describeHere("the asked host in every client's facts", () => {
  const harness = useBrowser({
    model: true,
    server: { egress: { allow: ["registry.test", "*.github.test"], projects: {}, hosts: {} } },
  });
  let root: string;
  beforeAll(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), "spool-egress-clients-")));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("spool pending and the web card show the project's list and the asked host", async () => {
    const client = await harness.ts.clientIn("egress-clients");
    await client.call("run/create", { alias: "asks" });
    const { path } = await client.call("proposal/create", { run: "asks", tool: "sh", command: "npm install", allow_hosts: ["extra.test", "registry.test"] });
    const { attributes } = await client.call("entry/get", { run: "asks", path });
    expect(factValue(proposalFacts(attributes), "network")).toBe(SHOWN);

    const pending = spawnCli(["pending", "--server", harness.ts.server.url, "--token-file", harness.ts.server.config.tokenFile, "--project", "egress-clients"]);
    expect(await pending.exit).toBe(0);
    expect(networkLine(pending.stdout())).toBe(SHOWN);

    const page = await harness.open("egress-clients");
    const card = `.proposal[data-path="${path}"]`;
    await page.waitForSelector(card);
    expect(await page.$eval(card, (el) => el.querySelector('dd[data-fact="network"]')?.textContent ?? "")).toBe(SHOWN);
    client.close();
  }, 60_000);

  it("an MCP client's elicitation (spool mcp) shows them; a decline runs nothing", async () => {
    const mcp = await startMcp({
      args: ["--server", harness.ts.server.url, "--project", root, "--role", "person"],
      env: { SPOOL_HOME: harness.ts.home },
      elicitation: true,
    });
    try {
      const call = mcp.client.callTool({ name: "run_command", arguments: { command: "npm install", allow_hosts: ["extra.test"] } }, CallToolResultSchema, {
        timeout: 60_000,
      });
      const ask = await mcp.elicitation();
      expect(networkLine(ask.message)).toBe(SHOWN);
      ask.answer({ action: "decline" });
      expect((await call).isError).toBe(true);
      expect(resultText(await call)).toContain("The command did not run.");
    } finally {
      await mcp.close();
    }
  }, 60_000);

  it("an ACP editor's permission request (spool acp) shows them, as text and in rawInput", async () => {
    const acp = spawnAcp({ args: ["--server", harness.ts.server.url], env: { SPOOL_HOME: harness.ts.home } });
    try {
      await initialize(acp, { name: "zed" });
      const { sessionId } = await acp.connection.agent.request("session/new", { cwd: root, mcpServers: [] });
      const run = sessionId.split("/")[1]!;
      const phone = await harness.ts.client();
      await phone.initialize(undefined, { root, client: { name: "phone", version: "1.0" } });
      const { path } = await phone.call("proposal/create", { run, tool: "sh", command: "npm install", allow_hosts: ["extra.test"] });
      const ask = await acp.permission();
      const shown = (ask.params.toolCall.content ?? []).flatMap((c) => (c.type === "content" && c.content.type === "text" ? [c.content.text] : [])).join("\n");
      expect(networkLine(shown)).toBe(SHOWN);
      expect(ask.params.toolCall.rawInput).toMatchObject({
        network: "allowlist",
        egress: { hosts: ["registry.test", "*.github.test"], asked: ["extra.test"] },
      });
      ask.answer({ outcome: { outcome: "selected", optionId: "reject_once" } });
      await eventually(async () => (await phone.call("entry/get", { run, path })).status === ENTRY.rejected, 20_000, "the rejection");
      phone.close();
    } finally {
      await acp.stop("SIGKILL");
    }
  }, 60_000);
});
