import { z } from "zod";
import { request } from "../define.js";

export const rpcDiscover = request({
  name: "rpc.discover",
  role: "runner",
  description: "The OpenRPC document of this server: every method and notification, generated from their schemas.",
  access: "none",
  params: z.strictObject({}),
  result: z.record(z.string(), z.unknown()),
});
