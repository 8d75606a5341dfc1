import { hostname } from "node:os";
import type { z } from "zod";
import type { FleetRunner } from "../../core/fleet.js";
import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import type { RunnerInfo } from "../../protocol/runner.js";

export const runnerList = defineMethod({
  ...methods["runner/list"],
  handler: async (_params, ctx) => {
    const { core, project } = ctx;
    // Where each runner is: the server it is attached to (`host:port`; several may share the database) and its machine.
    const info = (r: FleetRunner): z.input<typeof RunnerInfo> => ({
      name: r.name,
      backend: r.backend,
      description: r.description,
      labels: r.labels,
      default: r.default,
      embedded: r.embedded,
      attachedAt: r.attachedAt,
      running: r.running,
      capacity: r.capacity,
      pools: r.pools,
      sandbox: r.sandbox,
      ...(r.container ? { container: r.container } : {}),
      attachedBy: r.embedded ? null : r.attachedBy,
      server: r.server,
      host: r.embedded ? hostname() : r.host,
      root: r.root,
      state: r.state,
      heldUntil: r.heldUntil,
      ...(r.resting ? { resting: r.resting } : {}),
    });
    const list = (await core.fleet.runners(project)).map(info);
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
        capacity: null,
        pools: [],
        sandbox: await embeddedSandbox,
        attachedBy: null,
        server: await core.cluster.serverLabel(core.cluster.serverId),
        host: hostname(),
        state: "claiming",
        heldUntil: null,
      });
    }
    return { runners: list.sort((a, b) => a.name.localeCompare(b.name)) };
  },
});
