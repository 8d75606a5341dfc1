import { SpoolRpcError } from "./errors.js";

/** What `sayReconnects` needs of a client: its reconnect listeners (SpoolClient has them). */
export interface Reconnecting {
  onReconnectFailed(listener: (error: unknown, attempt: number) => void): void;
  onReconnect(listener: () => void): void;
}

/** Why one reconnect try did not join, in a line: the server's error code and message, or the connection's error. */
export function reconnectFailure(error: unknown): string {
  if (error instanceof SpoolRpcError) return `${error.errorCode ?? error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Says, through `log`, why a client's reconnect tries do not join (a removed project, a revoked credential, a server
 * gone): at the first try and then at tries 2, 4, 8, … (once the delay between tries is at its cap, a line every few
 * minutes at most, not one every few seconds for as long as the client lives); and once, when it joins again after
 * tries that failed — at the warnings' level, so whoever was shown them (a bridge logs warnings alone by default) is
 * shown that they are over. `what` names the connection in the lines (`spool acp: project "web"`, say).
 */
export function sayReconnects(client: Reconnecting, what: string, log: { warn(message: string): void }): void {
  let failed = 0;
  client.onReconnectFailed((error, attempt) => {
    failed = attempt;
    // 1, 2, 4, 8, …: a power of two.
    if ((attempt & (attempt - 1)) !== 0) return;
    log.warn(`${what}: the connection to the Spool server dropped, and try ${attempt} to join again failed (${reconnectFailure(error)}); still trying`);
  });
  client.onReconnect(() => {
    if (failed === 0) return;
    log.warn(`${what}: joined the Spool server again after ${failed} failed ${failed === 1 ? "try" : "tries"}`);
    failed = 0;
  });
}
