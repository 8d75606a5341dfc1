import { SpoolClient } from "../../src/client/spool-client.js";

/**
 * WebSocket clients a test opens with one credential or another, kept to be closed when its file ends: `as(token,
 * project)` connects to the server at `url()` and initializes into `project` (none when null).
 */
export function credentialClients(url: () => string) {
  const connected: SpoolClient[] = [];
  const as = async (token: string, project: string | null = "alpha"): Promise<SpoolClient> => {
    const c = await SpoolClient.connect(url(), { token });
    connected.push(c);
    if (project !== null) await c.initialize(project, { client: { name: "test-client", version: "1" } });
    return c;
  };
  const closeAll = () => {
    for (const c of connected) if (!c.closed) c.close();
  };
  return { as, connected, closeAll };
}
