import { z } from "zod";
import { buildOpenRpcDocument } from "../../rpc/discovery.js";
import { defineMethod } from "../../rpc/method.js";
import type { App } from "../plugin.js";
import { SERVER_NAME, SERVER_VERSION } from "../../version.js";

export function discoverMethod(app: App) {
  return defineMethod({
    name: "rpc.discover",
    description: "The OpenRPC document of this server: every method and notification, generated from their schemas.",
    access: "none",
    params: z.strictObject({}),
    result: z.record(z.string(), z.unknown()),
    handler: async () => app.applyFilter("rpc:discover", buildOpenRpcDocument(app.registry(), { title: SERVER_NAME, version: SERVER_VERSION })),
  });
}
