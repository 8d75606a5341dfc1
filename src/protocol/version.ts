/** The wire protocol version; clients must send the same major number. */
export const PROTOCOL_VERSION = "1.0";
