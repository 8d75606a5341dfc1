import { z } from "zod";
import { OpenAiCompatibleProvider, type ModelProvider } from "../model/provider.js";
import type { ModelConfig } from "../config.js";
import type { ProjectRef } from "../rpc/connection-context.js";
import { conflict, SpoolError } from "../rpc/errors.js";
import { defineMethod } from "../rpc/method.js";
import { listChannels, parseAttributes } from "../store/entries.js";
import { rejectProposal } from "../store/producers.js";
import { findRunById, updateRun } from "../store/runs.js";
import type { RunRow } from "../store/schema.js";
import type { App } from "../plugins/plugin.js";
import { definePlugin } from "../plugins/plugin.js";
import { PRODUCERS_SERVICE, type ProducerRegistry } from "../plugins/proposals/producer.js";
import { RUN_AGENT_SERVICE, type RunAgentSlot } from "../plugins/runs/index.js";
import { requireRun, runView } from "../plugins/runs/run-view.js";
import { Run, RunAlias } from "../plugins/schemas.js";
import { STREAMS_SERVICE, type StreamsService } from "../plugins/stream/index.js";
import { AgentDriver, OPEN, RUN, type ModelTarget } from "./loop.js";

export const MODEL_PROVIDERS_SERVICE = "model-providers";

/** Provider factories by the prefix of SPOOL_MODEL_<alias> values; another plugin can add its own. */
export class ModelProviders {
  readonly #factories = new Map<string, (model: ModelConfig) => ModelProvider>();

  register(prefix: string, factory: (model: ModelConfig) => ModelProvider): void {
    this.#factories.set(prefix, factory);
  }

  has(prefix: string): boolean {
    return this.#factories.has(prefix);
  }

  create(model: ModelConfig): ModelProvider {
    const factory = this.#factories.get(model.provider);
    if (!factory) throw new Error(`No provider "${model.provider}" for model alias "${model.alias}"`);
    return factory(model);
  }
}

/**
 * The agent loop: runs with a model, prompts queued as loops, tools (sh, env,
 * get, wait, done), providers, abort, and the notifications clients watch.
 */
export const agentPlugin = definePlugin({
  name: "agent",
  dependencies: ["runs", "proposals", "stream"],
  setup(app) {
    const registry = app.use<ProducerRegistry>(PRODUCERS_SERVICE);
    const streams = app.use<StreamsService>(STREAMS_SERVICE);
    const providers = new ModelProviders();
    const openAi = (m: ModelConfig) => new OpenAiCompatibleProvider(`${m.provider}/${m.model}`, { baseUrl: m.baseUrl, ...(m.apiKey ? { apiKey: m.apiKey } : {}) });
    providers.register("openai", openAi);
    providers.register("ollama", openAi); // Ollama serves the same API under /v1
    app.provide(MODEL_PROVIDERS_SERVICE, providers);
    const targets = new Map<string, ModelTarget>();
    const target = (alias: string): ModelTarget | undefined => {
      let t = targets.get(alias);
      const config = app.config.agent.models.find((m) => m.alias === alias);
      if (!t && config) targets.set(alias, (t = { alias, model: config.model, provider: providers.create(config) }));
      return t;
    };
    const driver = new AgentDriver(app, registry, target, app.config.agent);

    const checkModel = (alias: string) => {
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
    };
    const queuePrompt = async (project: ProjectRef, run: RunRow, prompt: string, mode: "ask" | "act") => {
      const db = app.store.db;
      const last = await db.selectFrom("loops").select("seq").where("run_id", "=", run.id).orderBy("seq", "desc").executeTakeFirst();
      await db.insertInto("loops").values({ run_id: run.id, seq: (last?.seq ?? 0) + 1, prompt, mode, status: RUN.queued, created_at: Date.now() }).execute();
      if (run.status === RUN.done || run.status === RUN.aborted || run.status === RUN.failed) {
        await updateRun(db, run.id, { status: RUN.queued, updated_at: Date.now() });
        app.notifyProject(project.id, "run/state", { run: run.alias, status: RUN.queued, turn: run.turn, loop: null, event: "prompt queued" });
      }
      driver.kick(run.id);
    };
    app.use<RunAgentSlot>(RUN_AGENT_SERVICE).current = { checkModel, prompt: queuePrompt };

    app.notification({
      name: "run/state",
      description: "A run's status changed, or a step happened (model reply, tool call). Sent to every connection of the project.",
      direction: "server",
      params: z.object({
        run: z.string(),
        status: z.number().int(),
        turn: z.number().int(),
        loop: z.object({ seq: z.number().int(), status: z.number().int() }).nullable(),
        event: z.string(),
      }).passthrough(),
    });
    app.notification({
      name: "run/progress",
      description: "The model's text as it streams, a delta at a time.",
      direction: "server",
      params: z.object({ run: z.string(), turn: z.number().int(), loop: z.number().int(), delta: z.string() }),
    });
    app.scheme({ name: "error", description: "Why a run's loop failed (provider error, context too long, too many steps).", streamed: false });

    app.method(
      defineMethod({
        name: "model/list",
        description: "The configured model aliases (SPOOL_MODEL_<alias>), with provider and endpoint.",
        params: z.strictObject({}),
        result: z.object({ models: z.array(z.object({ alias: z.string(), provider: z.string(), model: z.string(), baseUrl: z.string() })) }),
        handler: () => ({ models: app.config.agent.models.map(({ alias, provider, model, baseUrl }) => ({ alias, provider, model, baseUrl })) }),
      }),
    );

    app.method(
      defineMethod({
        name: "run/prompt",
        description: "Queues a prompt as the run's next loop (FIFO); it starts when the loops before it finish.",
        params: z.strictObject({ run: RunAlias, prompt: z.string().min(1).max(256 * 1024), mode: z.enum(["ask", "act"]).optional() }),
        result: z.object({ run: Run, queued: z.number().int().describe("Loops waiting before and including this one") }),
        handler: async (params, ctx) => {
          const run = await requireRun(app.store.db, ctx.project, params.run);
          if (!run.model) throw new SpoolError("UNSUPPORTED", `Run "${run.alias}" has no model; create a run with a model to prompt it`, { run: run.alias });
          await queuePrompt(ctx.project, run, params.prompt, params.mode ?? run.mode);
          const open = await app.store.db
            .selectFrom("loops")
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .where("run_id", "=", run.id)
            .where("status", "in", OPEN)
            .executeTakeFirstOrThrow();
          return { run: runView((await findRunById(app.store.db, run.id))!), queued: Number(open.n) };
        },
      }),
    );

    app.method(
      defineMethod({
        name: "run/abort",
        description: "Stops a run: the model call in flight, its queued loops, its pending proposals (rejected) and its running commands (cancelled; runners kill them). The run ends 499.",
        params: z.strictObject({ run: RunAlias, reason: z.string().max(4096).optional() }),
        result: z.object({ run: Run, rejected: z.array(z.string()), cancelled: z.array(z.string()) }),
        handler: async (params, ctx) => {
          const db = app.store.db;
          const run = await requireRun(db, ctx.project, params.run);
          if (!OPEN.some((status) => status === run.status)) {
            throw conflict(`Run "${run.alias}" is not running (status ${run.status})`, { status: run.status });
          }
          const reason = params.reason ?? "run aborted";
          const now = Date.now();
          await updateRun(db, run.id, { status: RUN.aborted, updated_at: now, attributes: JSON.stringify({ ...JSON.parse(run.attributes), abortReason: reason }) });
          await db.updateTable("loops").set({ status: RUN.aborted, finished_at: now }).where("run_id", "=", run.id).where("status", "in", OPEN).execute();
          driver.interrupt(run.id, reason);
          const logs = await db.selectFrom("entries").selectAll().where("run_id", "=", run.id).where("scheme", "=", "log").where("status", "in", [202, 200]).execute();
          const rejected: string[] = [];
          const cancelled: string[] = [];
          for (const log of logs) {
            if (log.status === 202) {
              if (await rejectProposal(db, log, { ...parseAttributes(log), decision: "reject", reason, resolvedBy: "run/abort" })) {
                rejected.push(log.path);
                app.notifyProject(ctx.project.id, "run/resolved", { run: run.alias, path: log.path, decision: "reject", status: 403, runner: null, channels: [] });
              }
            } else if ((await listChannels(db, log.id)).some((c) => c.status === 102)) {
              const result = await streams.finish(app, streams.hub, ctx.project, run, log, { kind: "cancelled", reason });
              if (result.changed) {
                cancelled.push(log.path);
                app.notifyProject(ctx.project.id, "stream/cancelled", { run: run.alias, path: log.path, reason });
              }
            }
          }
          const after = (await findRunById(db, run.id))!;
          app.notifyProject(ctx.project.id, "run/state", { run: run.alias, status: RUN.aborted, turn: after.turn, loop: null, event: "aborted", reason });
          await app.emit("run:status", { project: ctx.project, run: after, previous: run.status });
          return { run: runView(after), rejected, cancelled };
        },
      }),
    );

    // A proposal the model made was resolved (from any connection): continue its run.
    app.on("entry:status", ({ run, entry }) => {
      if (entry.scheme === "log" && run.model && parseAttributes(entry).toolCallId) driver.kick(run.id);
    });
    // After a restart, every run that was in the middle of something continues from the store.
    app.on("server:started", async () => {
      const open = await app.store.db.selectFrom("runs").select("id").where("model", "is not", null).where("status", "in", OPEN).execute();
      for (const { id } of open) driver.kick(id);
    });
  },
});
