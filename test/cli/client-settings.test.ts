import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { clientSettings } from "../../src/cli/settings.js";
import { loadConfig } from "../../src/config/config.js";
import { tempDir } from "../helpers/server.js";

const CHECKED = ".config-checked.json";

describe("the settings a client command reads (src/cli/settings.ts)", () => {
  it("with no config.json: the defaults and the environment, and nothing written", async () => {
    const home = tempDir("spool-settings-");
    expect(await clientSettings({ SPOOL_HOME: home, SPOOL_PORT: "7555" })).toMatchObject({
      host: "127.0.0.1",
      port: 7555,
      socketPath: join(home, "spool.sock"),
    });
    expect(existsSync(join(home, CHECKED))).toBe(false);
  });

  it("a bad environment fails as spool serve's settings do", async () => {
    const home = tempDir("spool-settings-");
    const env = { SPOOL_HOME: home, SPOOL_SANDBOX: "sometimes" };
    expect(() => loadConfig({}, env)).toThrow('SPOOL_SANDBOX must be auto, workspace-write or full, got "sometimes"');
    await expect(clientSettings(env)).rejects.toThrow('SPOOL_SANDBOX must be auto, workspace-write or full, got "sometimes"');
  });

  it("a good config.json is read in full once, then known by its identity; edited, it is read again", async () => {
    const home = tempDir("spool-settings-");
    const env = { SPOOL_HOME: home };
    writeFileSync(join(home, "config.json"), JSON.stringify({ host: "::", port: 7601, demoModel: true }));
    expect(await clientSettings(env)).toMatchObject({ host: "::", port: 7601 });
    expect(JSON.parse(readFileSync(join(home, CHECKED), "utf8"))).toMatchObject({ host: "::", port: 7601 });
    expect(await clientSettings(env)).toMatchObject({ host: "::", port: 7601 });
    writeFileSync(join(home, "config.json"), JSON.stringify({ port: "abc" }));
    const message = `${join(home, "config.json")}: "port" must be an integer 0-65535, got "abc"`;
    expect(() => loadConfig({}, env)).toThrow(message);
    await expect(clientSettings(env)).rejects.toThrow(message);
  });

  it("what the record says counts only for the file it names", async () => {
    const home = tempDir("spool-settings-");
    writeFileSync(join(home, "config.json"), JSON.stringify({ prot: 7421 }));
    writeFileSync(join(home, CHECKED), JSON.stringify({ file: "1:2:3:4:5", port: 7000 }));
    await expect(clientSettings({ SPOOL_HOME: home })).rejects.toThrow('"prot" is not a setting — did you mean "port"?');
  });
});
