import { agentPlugin } from "../agent/index.js";
import { entriesPlugin } from "../features/entries/index.js";
import { runsPlugin } from "../features/runs/index.js";
import { sessionPlugin } from "../features/session/index.js";
import { envPlugin } from "./env/index.js";
import type { Plugin } from "./plugin.js";
import { proposalsPlugin } from "./proposals/index.js";
import { runnersPlugin } from "./runners/index.js";
import { shPlugin } from "./sh/index.js";
import { streamPlugin } from "./stream/index.js";

/** The built-in features, each a plugin like any external one. */
export const builtinPlugins: readonly Plugin[] = [
  sessionPlugin,
  runsPlugin,
  entriesPlugin,
  proposalsPlugin,
  shPlugin,
  envPlugin,
  streamPlugin,
  runnersPlugin,
  agentPlugin,
];
