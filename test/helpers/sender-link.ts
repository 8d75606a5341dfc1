// biome-ignore-all lint/suspicious/noExplicitAny: a fake server's untyped params
import type { Slots } from "../../src/runners/client/channel-sender.js";

/** The link a ChannelSender sends through, in tests: the current connection (its `request`) and `slots` calls in flight. */
export function senderLink(slots: Slots, connection: () => { bytes?: boolean; request(method: string, params: any): Promise<unknown> }) {
  return {
    current: connection,
    tryAcquire: () => slots.tryAcquire(),
    release: () => slots.release(),
    whenFree: (wake: () => void) => slots.whenFree(wake),
  };
}
