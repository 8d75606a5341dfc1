import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { SPOOL_BIN } from "../helpers/process.js";

it("docs/acp.md's Zed settings are valid JSON and their command line is one spool acp takes, with the editor's own credential", async () => {
  const readme = readFileSync(new URL("../../docs/acp.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Editors: Spool as an ACP agent"));
  const block = /```json\n([\s\S]*?)```/.exec(section)![1]!;
  const settings = JSON.parse(block) as { agent_servers: Record<string, { type: string; command: string; args: string[]; env: Record<string, string> }> };
  const spool = settings.agent_servers.Spool!;
  expect(spool).toMatchObject({ type: "custom", command: "spool" });
  expect(spool.args.slice(0, 3)).toEqual(["acp", "--credential", "zed-app"]);
  const { stdout } = await promisify(execFile)(process.execPath, [SPOOL_BIN, ...spool.args, "--help"]);
  expect(stdout).toContain("Usage: spool acp");
});
