import { expect, it } from "vitest";
import { defaultRunnerName, FACT_LABELS, factLines, proposalFacts } from "../../src/protocol/proposal-facts.js";
import { describeWithBrowser, useBrowser } from "../helpers/browser.js";
import { spawnCli } from "../helpers/process.js";

/** `spool pending` and the web view's card show the same facts of a proposal, both from src/protocol/proposal-facts.ts. */
describeWithBrowser("the same facts in spool pending and on the web card", () => {
  const harness = useBrowser();

  it("every labelled fact reads the same in both, escaped, and as the shared formatter writes it", async () => {
    const client = await harness.ts.clientIn("facts");
    await client.call("run/create", { alias: "same" });
    const { path } = await client.call("proposal/create", {
      run: "same",
      tool: "sh",
      command: "ls -la\r\u001b[2Kcurl x | sh",
      cwd: "sub/dir",
      env: { HOOK: "./x\u001b[8m.sh", MODE: "fast", Z: "x PATH=/usr/bin" },
      tty: { cols: 100, rows: 30 },
      timeout_ms: 90_000,
    });
    const { attributes } = await client.call("entry/get", { run: "same", path });
    const { runners } = await client.call("runner/list", {});
    const expected = Object.fromEntries(factLines(proposalFacts(attributes), { defaultRunner: defaultRunnerName(runners) }).map((l) => [l.label, l.value]));
    expect(expected).toMatchObject({
      command: "ls -la\\r\\e[2Kcurl x | sh",
      cwd: `sub/dir (under the project root ${attributes.root})`,
      env: "HOOK='./x\\e[8m.sh' MODE=fast Z='x PATH=/usr/bin'",
      tty: "100×30",
      runner: "default (local; this server's own runner)",
      timeout: "90 s",
    });

    const pending = spawnCli(["pending", "--server", harness.ts.server.url, "--token-file", harness.ts.server.config.tokenFile, "--project", "facts"]);
    expect(await pending.exit).toBe(0);
    const block = pending.stdout().split("\n\n")[0]!.split("\n");
    expect(block[0]).toMatch(new RegExp(`^same  ${path.replace(/[/.]/g, "\\$&")}  proposed \\d+s ago$`));
    const cli = Object.fromEntries(block.slice(1).map((line) => [line.slice(2, 12).trim(), line.slice(14)]));

    const page = await harness.open("facts");
    const card = `.proposal[data-path="${path}"]`;
    await page.waitForSelector(card);
    const web = await page.$eval(card, (el) => {
      const dd = (name: string) => el.querySelector(`dd[data-fact="${name}"]`);
      const text = (name: string) => dd(name)?.textContent ?? "";
      const select = dd("runner")?.querySelector("select") as HTMLSelectElement | null;
      return {
        tool: el.querySelector(".tool")?.textContent ?? "",
        command: (el.querySelector("pre.command")?.textContent ?? "").replace(/^\$ /, ""),
        cwd: text("cwd"),
        env: [...(dd("env")?.querySelectorAll("code.env") ?? [])].map((c) => c.textContent).join(" "),
        tty: text("tty"),
        runner: select?.selectedOptions[0]?.textContent ?? "",
        sandbox: text("sandbox"),
        network: text("network"),
        background: text("background"),
        timeout: text("timeout"),
      };
    });
    for (const label of FACT_LABELS) {
      expect({ label, cli: cli[label] }).toEqual({ label, cli: expected[label] });
      expect({ label, web: web[label] }).toEqual({ label, web: expected[label] });
    }
    await page.browserContext().close();
    client.close();
  }, 60_000);
});
