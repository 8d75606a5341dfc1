import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";

// Which better-sqlite3 this Node loads. Two lines of it are dependencies, and each Node Spool supports loads one:
//
// - better-sqlite3 13 (`better-sqlite3`): Node-API 10, one prebuilt binary in the package for every Node that has
//   Node-API 10 (22.14 and later, 24), nothing compiled at install. Node 20 has Node-API 9: it crashes loading it.
// - better-sqlite3 12 (`better-sqlite3-node20`, an npm alias, an optional dependency): built by npm for one Node's ABI,
//   compiled from source at install (a C++ toolchain, ~70 s). It serves Node 20; on Node 24 it aborts the process
//   when a collected statement is freed (its ObjectWrap's cleanup hook, `(env) != nullptr`), which 13 does not do.
//
// Both have the same API and the same SQLite file format, so a database moves between Node lines as it is. Every
// other module loads the driver here (a test holds src/, test/ and bench/ to it): a static import of either package
// would load the wrong line on some Node.

/** The Node-API version better-sqlite3 13's binary needs. */
const NODE_API_13 = 10;

export interface SqliteLine {
  /** The npm package (directory under node_modules) loaded on this Node. */
  package: "better-sqlite3" | "better-sqlite3-node20";
  /** better-sqlite3's major version in it. */
  major: 12 | 13;
  /** How it gets its binary: compiled for this Node's ABI at install, or prebuilt on Node-API. */
  build: "compiled" | "prebuilt";
}

/** The better-sqlite3 line a Node of this Node-API version loads. */
export function sqliteLineFor(napi: number): SqliteLine {
  return napi >= NODE_API_13 ? { package: "better-sqlite3", major: 13, build: "prebuilt" } : { package: "better-sqlite3-node20", major: 12, build: "compiled" };
}

/** Both lines, whichever Node runs. */
export const SQLITE_LINES: readonly SqliteLine[] = [sqliteLineFor(NODE_API_13), sqliteLineFor(NODE_API_13 - 1)];

/** Both lines' packages: left out of a worker's bundle, which requires the driver by its path. */
export const SQLITE_PACKAGES: readonly string[] = SQLITE_LINES.map((line) => line.package);

/** The line this Node loads. */
export const SQLITE_LINE: SqliteLine = sqliteLineFor(Number(process.versions.napi));

const require = createRequire(import.meta.url);

/** The driver's package is not installed (an optional dependency whose build failed, an install with another Node). */
export class SqliteDriverMissing extends Error {
  override readonly name = "SqliteDriverMissing";
  readonly code = "SPOOL_SQLITE_DRIVER_MISSING";
  constructor(
    readonly line: SqliteLine,
    override readonly cause: unknown,
  ) {
    super(`${line.package} (better-sqlite3 ${line.major}, the SQLite driver Node ${process.versions.node} loads) is not installed`);
  }
}

let loaded: typeof BetterSqlite3 | null = null;

/** The driver class of this Node's line, loaded at the first call; SqliteDriverMissing when its package is missing. */
export function sqliteDriver(): typeof BetterSqlite3 {
  loaded ??= require(sqliteDriverPath()) as typeof BetterSqlite3;
  return loaded;
}

/** The resolved path of the driver's package: the checkpoint and search workers require it by this path. */
export function sqliteDriverPath(): string {
  try {
    return require.resolve(SQLITE_LINE.package);
  } catch (error) {
    throw new SqliteDriverMissing(SQLITE_LINE, error);
  }
}

/** Opens a SQLite database with this Node's driver. */
export function openSqlite(file: string, options?: BetterSqlite3.Options): BetterSqlite3.Database {
  const Driver = sqliteDriver();
  return new Driver(file, options);
}
