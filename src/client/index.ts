// The typed client for editor plugins, scripts and runners: `import { SpoolClient } from "spool/client"`.

export type { MethodName, ParamsOf, ResultOf, SpoolMethods } from "../protocol/methods/index.js";
export type { NotificationName, SpoolNotifications } from "../protocol/notifications.js";
export { browserTransport, connectBrowserWebSocket } from "./browser-transport.js";
export { reconnectFailure, sayReconnects } from "./reconnect-log.js";
export { ConnectionClosedError, type ReconnectOptions, SpoolClient, SpoolRpcError, type StreamChunk, type StreamWatch } from "./spool-client.js";
export { ConnectError, connectWebSocket, type WebSocketOptions } from "./ws-transport.js";
