/* Who calls /mcp: the principal its bearer credential names (both revisions, http.ts and modern.ts). */

/** Who called, as the server's authentication found it. */
export interface McpCaller {
  /** The principal's name (shown as who proposed). */
  name: string;
  /** Its role: only `person` and `admin` may decide a proposal from the MCP client (elicitation). */
  role: string;
  /** The bearer credential it presented, which its Spool connection presents in turn. */
  credential: string;
  /** When that credential expires (ms since the epoch); its sessions and streams end then. Null: never. */
  expiresAt?: number | null;
}
