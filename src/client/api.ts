// The client's types come from the protocol descriptors (src/protocol); this module only keeps the old import
// path working for the clients that still use it.
export type { MethodName, ParamsOf, ResultOf, SpoolMethods } from "../protocol/methods/index.js";
export type { NotificationName, SpoolNotifications } from "../protocol/notifications.js";
