import type { ProjectRef } from "../../rpc/connection-context.js";
import type { RunRow } from "../../store/schema.js";
import { definePlugin } from "../plugin.js";
import { runCreateMethod } from "./run-create.js";
import { runGetMethod } from "./run-get.js";
import { runListMethod } from "./run-list.js";

export const RUN_AGENT_SERVICE = "run-agent";

/** What `run/create` needs from an agent-loop plugin to start runs with a model. */
export interface RunAgent {
  /** Throws a clear error for an unknown model alias. */
  checkModel(alias: string): void;
  /** Queues `prompt` as the run's next loop and starts driving it. */
  prompt(project: ProjectRef, run: RunRow, prompt: string, mode: "ask" | "act"): Promise<void>;
}

/** Holds the agent loop, installed by its plugin; without one, runs with a model are UNSUPPORTED. */
export class RunAgentSlot {
  current: RunAgent | null = null;
}

/** Runs: create, get, list. The agent loop plugin drives their status. */
export const runsPlugin = definePlugin({
  name: "runs",
  dependencies: ["session"],
  setup(app) {
    const agent = new RunAgentSlot();
    app.provide(RUN_AGENT_SERVICE, agent);
    app.method(runCreateMethod(app, agent));
    app.method(runGetMethod(app));
    app.method(runListMethod(app));
  },
});
