import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { name: string; version: string };

export const SERVER_NAME = pkg.name;
export const SERVER_VERSION = pkg.version;
// Part of the wire (src/protocol), re-exported for the server's code.
export { PROTOCOL_VERSION } from "./protocol/version.js";
