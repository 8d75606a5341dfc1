import { describe, expect, it } from "vitest";
import { modelsFromEnv } from "../../src/config/config.js";

describe("model aliases from the environment", () => {
  it("reads openai and ollama models with their endpoints, and rejects malformed values", () => {
    const models = modelsFromEnv({
      SPOOL_MODEL_FAST: "openai/gpt-4o-mini",
      OPENAI_BASE_URL: "http://127.0.0.1:9/v1",
      OPENAI_API_KEY: "sk-x",
      SPOOL_MODEL_LOCAL_LLAMA: "ollama/llama3.1:8b",
      OLLAMA_BASE_URL: "http://127.0.0.1:11434/",
      UNRELATED: "x",
    });
    expect(models).toEqual([
      { alias: "fast", provider: "openai", model: "gpt-4o-mini", baseUrl: "http://127.0.0.1:9/v1", apiKey: "sk-x" },
      { alias: "local-llama", provider: "ollama", model: "llama3.1:8b", baseUrl: "http://127.0.0.1:11434/v1" },
    ]);
    expect(modelsFromEnv({ SPOOL_MODEL_X: "ollama/m" })[0]!.baseUrl).toBe("http://127.0.0.1:11434/v1");
    expect(() => modelsFromEnv({ SPOOL_MODEL_BAD: "gpt-4o" })).toThrow(/SPOOL_MODEL_BAD must look like openai\/<model-id>/);
  });
});
