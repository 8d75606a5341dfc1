// The typed client for editor plugins, scripts and runners: `import { SpoolClient } from "spool/client"`.
export { SpoolClient, SpoolRpcError, ConnectionClosedError, type ReconnectOptions, type StreamChunk, type StreamWatch } from "./spool-client.js";
export { connectWebSocket, ConnectError, type WebSocketOptions } from "./ws-transport.js";
export type { SpoolMethods, SpoolNotifications, MethodName, NotificationName, ParamsOf, ResultOf } from "./api.js";
