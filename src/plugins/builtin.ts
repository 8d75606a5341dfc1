import { entriesPlugin } from "./entries/index.js";
import type { Plugin } from "./plugin.js";
import { runsPlugin } from "./runs/index.js";
import { sessionPlugin } from "./session/index.js";

/** The built-in features, each a plugin like any external one. */
export const builtinPlugins: readonly Plugin[] = [sessionPlugin, runsPlugin, entriesPlugin];
