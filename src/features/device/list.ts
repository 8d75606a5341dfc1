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
    // A scoped admin's "all" is every principal's its scope covers (src/core/scope.ts), never the home's or another project's.
    return { devices: await ctx.core.devices.list(principal, params.all === true) };
  },
});
