import type { BackendName } from "../protocol/backends.js";
import { DOCKER } from "./docker/flags.js";
import type { BackendRow } from "./flags.js";
import { LOCAL } from "./local/flags.js";
import { SSH } from "./ssh/flags.js";

/**
 * How `spool runner --backend NAME` builds each backend of the protocol's table (src/protocol/backends.ts): its
 * flags and its build, from the backend's own folder. A name without a row here, or a row without a name there, fails
 * the typecheck.
 */
export const BACKEND_ROWS = { local: LOCAL, docker: DOCKER, ssh: SSH } as const satisfies { readonly [name in BackendName]: BackendRow };

/** The row of backend `name`, as every row is seen. */
export const backendRow = (name: BackendName): BackendRow => BACKEND_ROWS[name];

/** A union's members as one intersection: every row's flags as one table, each flag typed. */
type Each<U> = (U extends unknown ? (each: U) => void : never) extends (all: infer I) => void ? I : never;

/** Every backend's own flags, in the table's order, each under its heading. */
export const backendFlags = (): Each<(typeof BACKEND_ROWS)[BackendName]["flags"]> => Object.assign({}, ...Object.values(BACKEND_ROWS).map((row) => row.flags));
