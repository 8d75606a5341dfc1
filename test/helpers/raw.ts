// biome-ignore-all lint/suspicious/noExplicitAny: tests read untyped wire data and raw rows
import type { Transport } from "../../src/rpc/transport.js";

/** Sends raw text over a transport and resolves with the next parsed message. */
export function rawExchange(transport: Transport, text: string, timeoutMs = 5_000): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to ${text.slice(0, 80)}`)), timeoutMs);
    let done = false;
    transport.onMessage((reply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(JSON.parse(reply));
    });
    transport.send(text);
  });
}
