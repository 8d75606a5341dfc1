import type { Plugin } from "../plugins/plugin.js";
import { agentPlugin } from "./agent/index.js";
import { auditPlugin } from "./audit/index.js";
import { devicesPlugin } from "./device/index.js";
import { entriesPlugin } from "./entries/index.js";
import { notifyPlugin } from "./notify/index.js";
import { envPlugin } from "./proposals/env.js";
import { proposalsPlugin } from "./proposals/index.js";
import { shPlugin } from "./proposals/sh.js";
import { runnersPlugin } from "./runners/index.js";
import { runsPlugin } from "./runs/index.js";
import { sessionPlugin } from "./session/index.js";
import { streamPlugin } from "./stream/index.js";
import { principalsPlugin } from "./token/index.js";

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
  principalsPlugin,
  devicesPlugin,
  notifyPlugin,
  auditPlugin,
];
