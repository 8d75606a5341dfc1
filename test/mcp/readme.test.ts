import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { SPOOL_BIN } from "../helpers/process.js";

it("docs/mcp.md's MCP configurations (Claude Code, Codex CLI, Cursor / Claude Desktop) name a command line spool mcp takes, with a credential of the client's own", async () => {
  const readme = readFileSync(new URL("../../docs/mcp.md", import.meta.url), "utf8");
  const start = readme.indexOf("## Agents: Spool as an MCP server");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  expect(section.replace(/\s+/g, " ")).toContain("`claude mcp add --scope local spool -- spool mcp --project /path/to/app --credential claude-app`");
  const toml = /```toml\n([\s\S]*?)```/.exec(section)![1]!;
  expect(toml).toContain("[mcp_servers.spool]");
  expect(toml).toContain('command = "spool"');
  expect(toml).toContain('args = ["mcp", "--project", "/path/to/app", "--credential", "codex-app"]');
  const json = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!) as { mcpServers: Record<string, { command: string; args: string[] }> };
  const spool = json.mcpServers.spool!;
  expect(spool.command).toBe("spool");
  expect(spool.args).toEqual(["mcp", "--project", "/path/to/app", "--credential", "cursor-app"]);
  const { stdout } = await promisify(execFile)(process.execPath, [SPOOL_BIN, ...spool.args, "--help"]);
  expect(stdout).toContain("Usage: spool mcp");
  // Every tool the server lists is described in the section's table.
  for (const tool of ["run_command", "read_output", "send_input", "signal", "cancel", "list_commands"]) expect(section).toContain(`| \`${tool}\` |`);
});
