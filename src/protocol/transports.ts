// No zod here: the web page bundles these words (test/protocol/proposal-facts.test.ts holds the page to no zod).

/**
 * How a connection reached the server, as the server itself verified it (never what the client says): the home's
 * Unix socket, TCP with a bearer credential (the server's proof first, §2c), a signed-in page's session (cookie and
 * key), a session of the server's own /mcp or /acp endpoint, or in process (the embedded runner, plugins).
 */
export const TRANSPORTS = ["unix", "tcp", "page", "mcp", "acp", "in-process"] as const;
export type TransportKind = (typeof TRANSPORTS)[number];

const TRANSPORT_WORDS: Record<TransportKind, string> = {
  unix: "the Unix socket",
  tcp: "TCP",
  page: "a page session",
  mcp: "/mcp",
  acp: "/acp",
  "in-process": "in process",
};

/**
 * Who acted, for people: the principal and the transport the server verified, the client's name shown as a claim
 * (`alice over the Unix socket, client claims "spool-web"`). The claim is whatever the caller put in initialize.
 */
export function claimWords(principal: string, transport: TransportKind | null | undefined, client: string | null | undefined): string {
  const over = transport ? ` over ${TRANSPORT_WORDS[transport]}` : "";
  return `${principal}${over}${client ? `, client claims "${client}"` : ""}`;
}
