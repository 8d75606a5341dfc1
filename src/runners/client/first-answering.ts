import type { SpoolClient } from "../../client/spool-client.js";

/**
 * A `connect` for servers sharing one database: tries each URL in turn, starting with the one that answered
 * last, so a runner whose server died reconnects to another and resumes there.
 */
export function firstAnswering(urls: readonly string[], connect: (url: string) => Promise<SpoolClient>): () => Promise<SpoolClient> {
  if (urls.length === 0) throw new Error("no server URL to connect to");
  let at = 0;
  return async () => {
    let last: unknown;
    for (let i = 0; i < urls.length; i++) {
      const index = (at + i) % urls.length;
      try {
        const client = await connect(urls[index]!);
        at = index;
        return client;
      } catch (error) {
        last = error;
      }
    }
    throw last;
  };
}
