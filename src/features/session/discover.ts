import { defineMethod } from "../../plugins/define-method.js";
import { serviceKey } from "../../plugins/services.js";
import type { BinaryFrames } from "../../protocol/binary-frame.js";
import { methods } from "../../protocol/methods/index.js";

/** Builds the OpenRPC document (the session plugin provides it: it sees the registry and the filters). */
export const DISCOVERY = serviceKey<() => Promise<Record<string, unknown>>>("discovery");

/** The binary frames this server takes (initialize's `binaryFrames`), read from the registry once it is frozen. */
export const BINARY_FRAMES = serviceKey<() => BinaryFrames>("binaryFrames");

/** The server's TCP address (initialize's `server.url`), known once it listens (`server:started`). */
export const LISTENING = serviceKey<() => string | undefined>("listening");

export const rpcDiscover = defineMethod({
  ...methods["rpc.discover"],
  handler: (_params, ctx) => ctx.services.use(DISCOVERY)(),
});
