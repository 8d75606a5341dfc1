import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, modelsFromEnv } from "../../src/config/config.js";

describe("model settings", () => {
  it("SPOOL_MODEL_<ALIAS>_MAX_TOKENS and SPOOL_MODEL_TIMEOUT_MS are settings, not aliases", () => {
    const env = {
      SPOOL_MODEL_FAST: "openai/gpt-4o-mini",
      SPOOL_MODEL_FAST_MAX_TOKENS: "2048",
      SPOOL_MODEL_TIMEOUT_MS: "5000",
      SPOOL_MODEL_SLOW: "ollama/llama3.1",
    };
    expect(modelsFromEnv(env).map((m) => [m.alias, m.maxTokens])).toEqual([
      ["fast", 2048],
      ["slow", undefined],
    ]);
    expect("maxTokens" in modelsFromEnv(env)[1]!).toBe(false);
    expect(() => modelsFromEnv({ SPOOL_MODEL_FAST: "openai/x", SPOOL_MODEL_FAST_MAX_TOKENS: "lots" })).toThrow(
      /SPOOL_MODEL_FAST_MAX_TOKENS must be a positive integer, got "lots"/,
    );
  });

  it("config.json sets the timeout and max_tokens per alias; the environment wins; the timeout defaults to 120 s", () => {
    const home = mkdtempSync(join(tmpdir(), "spool-model-settings-"));
    try {
      expect(loadConfig({ home }, {}).agent.modelTimeoutMs).toBe(120_000);
      writeFileSync(join(home, "config.json"), JSON.stringify({ modelTimeoutMs: 30_000, modelMaxTokens: { fast: 1000, slow: 500 } }));
      const env = { SPOOL_MODEL_FAST: "openai/a", SPOOL_MODEL_SLOW: "openai/b", SPOOL_MODEL_SLOW_MAX_TOKENS: "700" };
      const config = loadConfig({ home }, env);
      expect(config.agent.modelTimeoutMs).toBe(30_000);
      expect(config.agent.models.map((m) => [m.alias, m.maxTokens])).toEqual([
        ["fast", 1000],
        ["slow", 700],
      ]);
      expect(loadConfig({ home }, { ...env, SPOOL_MODEL_TIMEOUT_MS: "0" }).agent.modelTimeoutMs).toBe(0);
      expect(loadConfig({ home, agent: { modelTimeoutMs: 9 } }, env).agent.modelTimeoutMs).toBe(9);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
