import { hostname } from "node:os";
import type { z } from "zod";
import type { AttachedRunner } from "../../core/runner-registry.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import type { RunnerInfo } from "../../protocol/runner.js";

export const runnerList = defineMethod({
  ...methods["runner/list"],
  handler: async (_params, ctx) => {
    const { core, project } = ctx;
    // Where each runner is: this server (`host:port`; several may share the database) and the machine it runs on.
    const server = await core.cluster.serverLabel(core.cluster.serverId);
    const info = (r: AttachedRunner, state: "attached" | "disconnected", heldUntil: number | null): z.input<typeof RunnerInfo> => ({
      name: r.name,
      backend: r.backend,
      description: r.description,
      labels: r.labels,
      default: r.default,
      embedded: r.embedded,
      attachedAt: r.attachedAt,
      running: 0,
      sandbox: r.sandbox,
      ...(r.container ? { container: r.container } : {}),
      attachedBy: r.embedded ? null : r.attachedBy,
      server,
      host: r.embedded ? hostname() : r.host,
      state,
      heldUntil,
    });
    const list = core.runners.list(project.id).map((r) => info(r, "attached", null));
    // Gone, with work: its name (and its producers) wait for it until the grace ends.
    for (const { runner, until } of core.runners.held(project.id)) list.push(info(runner, "disconnected", until));
    const embedded = core.runners.embeddedName;
    const embeddedSandbox = core.runners.embeddedSandbox();
    if (embedded && embeddedSandbox && !list.some((r) => r.name === embedded)) {
      list.push({
        name: embedded,
        backend: "local",
        description: "embedded in the server; starts when first used",
        labels: {},
        default: false,
        embedded: true,
        attachedAt: 0,
        running: 0,
        sandbox: await embeddedSandbox,
        attachedBy: null,
        server,
        host: hostname(),
        state: "attached",
        heldUntil: null,
      });
    }
    for (const r of list) r.running = await core.lifecycle.runningOn(project, r.name);
    return { runners: list.sort((a, b) => a.name.localeCompare(b.name)) };
  },
});
