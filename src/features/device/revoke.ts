import { defineMethod } from "../../plugins/define-method.js";
import { methods } from "../../protocol/methods/index.js";

export const deviceRevoke = defineMethod({
  ...methods["device/revoke"],
  handler: async (params, ctx) => {
    const { principal } = ctx.connection;
    // Anyone unpairs its own principal's devices; an admin those of the principals its scope covers.
    const { device, closed } = await ctx.core.devices.revoke(params.device, principal);
    await ctx.core.audit.byCaller(ctx.connection, {
      action: "device/revoke",
      detail: { device: device.id, name: device.name, of: device.principal, closed },
    });
    return { device, closed };
  },
});
