import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigFileSchema } from "../../src/config/schema.js";
import { modelsFromEnv } from "../../src/config/settings.js";
import { RunCreateParams } from "../../src/protocol/methods/run.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const doc = readFileSync(join(root, "docs/models.md"), "utf8");

function example(name: string): string {
  const match = new RegExp(`<!-- example:${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!match) throw new Error(`example ${name} not found in docs/models.md`);
  return match[1]!;
}

/** The variables an `export A=B C=D` snippet sets, comments and all, as sh would read them. */
function exported(snippet: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of snippet.split("\n")) {
    const code = line.replace(/\s+#.*$/, "").trim();
    if (!code.startsWith("export ")) continue;
    for (const pair of code.slice(7).split(/\s+/)) {
      const eq = pair.indexOf("=");
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

describe("docs/models.md", () => {
  it("its environment snippet defines the aliases and providers it names, each with the key and endpoint it says", () => {
    const models = modelsFromEnv(exported(example("models-env")));
    expect(models.map((m) => [m.alias, m.provider, m.model])).toEqual([
      ["claude", "anthropic", "claude-sonnet-4-5"],
      ["fast", "openai", "gpt-4o-mini"],
      ["gpt", "openai-responses", "gpt-5"],
      ["local-llama", "ollama", "llama3.1"],
    ]);
    const by = Object.fromEntries(models.map((m) => [m.alias, m]));
    expect(by.claude).toMatchObject({ baseUrl: "https://api.anthropic.com", apiKey: "sk-ant-…" });
    expect(by.gpt).toMatchObject({ baseUrl: "https://api.openai.com/v1", apiKey: "sk-…" });
    expect(by["local-llama"]!.baseUrl).toBe("http://127.0.0.1:11434/v1");
    // Every alias the snippet's comments name is one it defines.
    for (const [, alias] of example("models-env").matchAll(/alias "([^"]+)"/g)) expect(by[alias!]).toBeDefined();
  });

  it("its config.json snippet is valid config, and its per-model settings reach the models", () => {
    const file = ConfigFileSchema.parse(JSON.parse(example("models-config")));
    const models = modelsFromEnv(exported(example("models-env")), file.modelMaxTokens, file.models);
    const by = Object.fromEntries(models.map((m) => [m.alias, m]));
    expect(by.claude).toMatchObject({ thinkingTokens: 4096, maxTokens: 16000 });
    expect(by["local-llama"]).toMatchObject({ contextTokens: 32768 });
    expect(file.budgets?.principals?.["ci-agent"]).toEqual({ costUsd: 5, commands: 200 });
  });

  it("its run/create example with a budget is what run/create takes", () => {
    expect(RunCreateParams.parse(JSON.parse(example("budget-create")))).toMatchObject({ budget: { costUsd: 5, seconds: 3600 } });
  });
});
