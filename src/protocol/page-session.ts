/**
 * How the web page presents its session's key (src/web/sessions.ts), the half of its session a cookie does not
 * carry: as a subprotocol at the WebSocket upgrade (a page cannot set headers there), as a header on plain HTTP.
 * No Node imports: the page bundles it.
 */
export const SUBPROTOCOL_SESSION_PREFIX = "spool.session.";
/** The header the page sends its session's key in on plain HTTP (GET/DELETE /session, /metrics). */
export const SESSION_KEY_HEADER = "spool-session-key";
