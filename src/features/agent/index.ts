import { AgentDriver, type ModelTarget } from "../../agent/loop.js";
import { LazyProvider, MODEL_PROVIDERS, ModelProviders } from "../../agent/providers.js";
import { AGENT_LOOP, type AgentLoop } from "../../agent/service.js";
import type { ModelConfig } from "../../config/config.js";
import { RUN } from "../../core/status.js";
import type { RunRow } from "../../core/views.js";
import { producerFromRow } from "../../core/views.js";
import { DemoProvider } from "../../model/demo.js";
import { type App, definePlugin } from "../../plugins/plugin.js";
import { notifications } from "../../protocol/notifications.js";
import type { ProjectRef } from "../../rpc/connection-context.js";
import { SpoolError } from "../../rpc/errors.js";
import { runAbort } from "./abort.js";
import { runBudget } from "./budget.js";
import { runHistory } from "./history.js";
import { modelList } from "./model-list.js";
import { runPrompt } from "./prompt.js";
import { abortRun } from "./stop.js";

export { MODEL_PROVIDERS, ModelProviders };

/**
 * The agent loop: runs with a model, prompts queued as loops, tools (sh, env,
 * get, wait, done), providers, abort, and the notifications clients watch.
 */
export const agentPlugin = definePlugin({
  name: "agent",
  dependencies: ["runs", "proposals", "stream"],
  setup(app) {
    const { core } = app;
    const providers = modelProviders(app);
    app.provide(MODEL_PROVIDERS, providers);
    const targets = new Map<string, ModelTarget>();
    const target = (alias: string): ModelTarget | undefined => {
      let t = targets.get(alias);
      const config = app.config.agent.models.find((m) => m.alias === alias);
      if (!t && config) {
        t = { alias, model: config.model, provider: providers.create(config), ...(config.contextTokens ? { contextTokens: config.contextTokens } : {}) };
        targets.set(alias, t);
      }
      return t;
    };
    const driver = new AgentDriver(core, target, app.config.agent, app.log);

    const loop = agentLoop(app, providers, driver);
    app.provide(AGENT_LOOP, loop);

    app.scheme({ name: "error", description: "Why a run's loop failed (provider error, context too long, too many steps).", streamed: false });
    app.notification(notifications["run/state"]);
    app.notification(notifications["run/progress"]);
    app.notification(notifications["run/tool"]);
    app.notification(notifications["run/compaction"]);
    app.method(modelList);
    app.method(runPrompt);
    app.method(runAbort);
    app.method(runHistory);
    app.method(runBudget);

    // A proposal the model made was resolved (from any connection): continue its run.
    app.on("entry:status", ({ run, entry }) => {
      if (entry.scheme === "log" && run.model && producerFromRow(entry).toolCallId) driver.kick(run.id);
    });
    // Another server sharing the database asks this one (holding the run's lease) to look at a run, or one that stopped left it here.
    core.cluster.onKick((runId) => driver.kick(runId));
    core.cluster.onInterrupt((runId, reason) => driver.interrupt(runId, reason));
    // After a restart, every run that was in the middle of something continues from the store.
    app.on("server:started", async () => {
      for (const id of await core.runs.openModelRuns()) driver.kick(id);
    });
  },
});

/** The model providers this plugin gives: OpenAI-compatible (and Ollama), OpenAI Responses, Anthropic, and the built-in demo. */
function modelProviders(app: App): ModelProviders {
  const providers = new ModelProviders();
  const name = (m: ModelConfig) => `${m.provider}/${m.model}`;
  const openAiOptions = (m: ModelConfig) => ({
    baseUrl: m.baseUrl,
    timeoutMs: app.config.agent.modelTimeoutMs,
    ...(m.apiKey ? { apiKey: m.apiKey } : {}),
    ...(m.maxTokens ? { maxTokens: m.maxTokens } : {}),
  });
  const openAi = (m: ModelConfig) =>
    new LazyProvider(name(m), async () => new (await import("../../model/openai-compatible.js")).OpenAiCompatibleProvider(name(m), openAiOptions(m)));
  providers.register("openai", openAi);
  providers.register("ollama", openAi); // Ollama serves the same API under /v1
  providers.register(
    "openai-responses",
    (m) => new LazyProvider(name(m), async () => new (await import("../../model/openai-responses.js")).OpenAiResponsesProvider(name(m), openAiOptions(m))),
  );
  providers.register("anthropic", (m) => {
    const apiKey = m.apiKey;
    if (!apiKey)
      throw new SpoolError("UNSUPPORTED", `Model "${m.alias}" (anthropic/${m.model}) has no API key: set ANTHROPIC_API_KEY where the server runs`, {
        model: m.alias,
      });
    return new LazyProvider(
      name(m),
      async () =>
        new (await import("../../model/anthropic.js")).AnthropicProvider(name(m), {
          baseUrl: m.baseUrl,
          apiKey,
          timeoutMs: app.config.agent.modelTimeoutMs,
          ...(m.maxTokens ? { maxTokens: m.maxTokens } : {}),
          ...(m.thinkingTokens ? { thinkingTokens: m.thinkingTokens } : {}),
        }),
    );
  });
  providers.register("demo", () => new DemoProvider()); // built in, no network: spool serve --demo-model
  return providers;
}

/** The agent loop other features call: a model checked, a prompt queued as a loop, a paused run resumed, a run aborted. */
function agentLoop(app: App, providers: ModelProviders, driver: AgentDriver): AgentLoop {
  const { core } = app;
  return {
    checkModel(alias) {
      const config = app.config.agent.models.find((m) => m.alias === alias);
      if (config && !providers.has(config.provider)) {
        throw new SpoolError("UNSUPPORTED", `Model "${alias}" uses provider "${config.provider}", which no loaded plugin provides`, { model: alias });
      }
      if (!config) {
        const known = app.config.agent.models.map((m) => m.alias);
        throw new SpoolError(
          "INVALID_PARAMS",
          `Unknown model "${alias}"; ${known.length ? `configured: ${known.join(", ")}` : "none is configured (set SPOOL_MODEL_<alias>=openai/<model-id>)"}`,
          { issues: [{ path: "model", message: "unknown model alias" }], model: alias },
        );
      }
    },
    // Each queued prompt is a stored loop its run's model answers in turn: a run holds a bounded number at once.
    async checkRoom(run: RunRow) {
      const bound = app.config.limits.maxOpenLoopsPerRun;
      const open = await core.runs.openLoops(run.id);
      if (open >= bound)
        throw new SpoolError(
          "LIMIT_EXCEEDED",
          `Run "${run.alias}" has ${open} prompts queued or under way, the most allowed (limits.maxOpenLoopsPerRun: ${bound}): wait for one to end, or abort the run`,
          { limit: "maxOpenLoopsPerRun", bound, run: run.alias },
        );
    },
    async prompt(project: ProjectRef, run: RunRow, prompt: string, mode: "ask" | "act", traceparent?: string) {
      await this.checkRoom(run);
      await core.runs.titleFrom(run, prompt);
      const loop = await core.runs.queueLoop(run, prompt, mode);
      if (traceparent) driver.traceLoop(loop.id, traceparent);
      if (!core.runs.isOpen(run)) await core.runs.change(run, project, RUN.queued, "prompt queued", {}, loop);
      driver.kick(run.id);
      return loop;
    },
    resume: (project, run) => driver.resume(run, project),
    stillPaused: (project, run) => driver.stillPaused(run, project),
    abort: (project, run, reason) => abortRun(core, project, run, reason, (id, why) => driver.interrupt(id, why)),
  };
}
