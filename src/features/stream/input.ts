import { defineMethod } from "../../plugins/define-method.js";
import { BASE64 } from "../../protocol/common.js";
import { methods } from "../../protocol/methods/index.js";
import { SpoolError } from "../../rpc/errors.js";
import { producerOrder } from "./order.js";

export const streamInput = defineMethod({
  ...methods["stream/input"],
  ordered: producerOrder,
  handler: (params, ctx) => {
    if (params.encoding === "base64" && !BASE64.test(params.data)) {
      throw new SpoolError("INVALID_PARAMS", "data is not valid base64", { issues: [{ path: "data", message: "not valid base64" }] });
    }
    const data = Buffer.from(params.data, params.encoding ?? "utf8");
    return ctx.core.controls.input(ctx.project, params, data, params.seq).then((sent) => {
      // Who typed into what, never what was typed (a password, a key): the trail keeps the size only.
      if (!sent.duplicate)
        void ctx.core.audit.byCaller(ctx.connection, {
          action: "input",
          project: ctx.project.name,
          run: params.run,
          path: params.path,
          detail: { bytes: data.length },
        });
      return sent;
    });
  },
});
