import { z } from "zod";
import { serviceKey } from "../../plugins/services.js";
import { defineMethod } from "../define.js";

/** Builds the OpenRPC document (the session plugin provides it: it sees the registry and the filters). */
export const DISCOVERY = serviceKey<() => Promise<Record<string, unknown>>>("discovery");

export const rpcDiscover = defineMethod({
  name: "rpc.discover",
  description: "The OpenRPC document of this server: every method and notification, generated from their schemas.",
  access: "none",
  params: z.strictObject({}),
  result: z.record(z.string(), z.unknown()),
  handler: (_params, ctx) => ctx.services.use(DISCOVERY)(),
});
