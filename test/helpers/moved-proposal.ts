import { hostname } from "node:os";
import { SpoolClient } from "../../src/client/spool-client.js";
import type { SpoolNotifications } from "../../src/protocol/notifications.js";
import { ENTRY } from "../../src/protocol/status.js";
import { twoServersSharingPostgres } from "./cluster.js";
import { eventually, type TestServer } from "./server.js";

/**
 * A proposal whose facts change before the decision, as they do in a cluster (SPEC §2d "Which server's runner"): two
 * servers on one PostgreSQL database, a proposal made through A (its facts: A's own runner, `local@A`, revision 1),
 * a client of B that shows it, then A stops: B records its own runner in A's place, raises the facts revision to 2
 * and announces the proposal again. An accept on revision 1 is refused FACTS_CHANGED. Call it in a describe block.
 */
export function movedProposal(prefix: string) {
  const pair = twoServersSharingPostgres(prefix);
  let servers: { a: TestServer; b: TestServer; root: string; admin: SpoolClient } | null = null;
  let onB: SpoolClient | null = null;
  const started = () => {
    if (!servers || !onB) throw new Error("movedProposal: start() first");
    return { ...servers, onB };
  };
  /** A server's runner as the facts name it: `local@host:port`. */
  const runnerOf = (server: TestServer) => `local@${hostname()}:${new URL(server.server.url).port}`;
  return {
    /** The pair, the project "team" on it, and a client of B (the admin's) kept for the checks. */
    async start() {
      servers = await pair.start();
      onB = pair.keep(await SpoolClient.connect(servers.b.server.url, { token: servers.b.server.token }));
      await onB.initialize("team");
      return started();
    },
    get a() {
      return started().a;
    },
    get b() {
      return started().b;
    },
    get root() {
      return started().root;
    },
    /** The runner A's facts name (revision 1) and B's (revision 2). */
    runnerA: () => runnerOf(started().a),
    runnerB: () => runnerOf(started().b),
    /** A run and a proposal in it made through A: shown with A's runner. */
    async propose(run: string, command: string): Promise<string> {
      const { admin } = started();
      await admin.call("run/create", { alias: run });
      return (await admin.call("proposal/create", { run, tool: "sh", command })).path;
    },
    /** A stops; resolves with B's announcement of the proposal at revision 2 (B's runner in A's place). */
    async move(path: string): Promise<SpoolNotifications["run/proposal"]> {
      const { a, onB } = started();
      const again = onB.next("run/proposal", (p) => p.path === path && p.attributes.factsRevision === 2, 30_000);
      await a.stop();
      return again;
    },
    /** The proposal's log entry, read through B. */
    entry(run: string, path: string) {
      return started().onB.call("entry/get", { run, path });
    },
    /** Whether it is still pending (nothing ran). */
    async pending(run: string, path: string): Promise<boolean> {
      return (await this.entry(run, path)).status === ENTRY.proposed;
    },
    /** Once it ended: the server whose runner ran it (its label) and what it wrote to stdout. */
    async ran(run: string, path: string): Promise<{ server: string | null; out: string }> {
      const { onB } = started();
      await eventually(async () => typeof (await this.entry(run, path)).attributes.outcome === "string", 30_000, `${path} to end`);
      const log = await this.entry(run, path);
      const stdout = log.producer?.channels.find((c) => c.channel === 1);
      const out = stdout ? String((await onB.call("entry/get", { run, path: stdout.path })).body ?? "") : "";
      const server = (log.attributes.runnerServer as { label?: string } | undefined)?.label ?? null;
      return { server: server === null ? null : `local@${server}`, out };
    },
  };
}
