import { agentPlugin } from "../features/agent/index.js";
import { entriesPlugin } from "../features/entries/index.js";
import { envPlugin } from "../features/proposals/env.js";
import { proposalsPlugin } from "../features/proposals/index.js";
import { shPlugin } from "../features/proposals/sh.js";
import { runnersPlugin } from "../features/runners/index.js";
import { runsPlugin } from "../features/runs/index.js";
import { sessionPlugin } from "../features/session/index.js";
import { streamPlugin } from "../features/stream/index.js";
import type { Plugin } from "./plugin.js";

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
