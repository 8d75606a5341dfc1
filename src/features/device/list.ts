import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";
import { SpoolError } from "../../rpc/errors.js";

export const deviceList = defineMethod({
  ...methods["device/list"],
  handler: async (params, ctx) => {
    const { principal } = ctx.connection;
    if (params.all && principal.role !== "admin")
      throw new SpoolError("FORBIDDEN", `device/list with all needs the admin role; "${principal.name}" acts as ${principal.role} and sees its own devices`, {
        role: "admin",
        held: principal.role,
        method: "device/list",
      });
    return { devices: await ctx.core.devices.list(params.all ? null : principal.name) };
  },
});
