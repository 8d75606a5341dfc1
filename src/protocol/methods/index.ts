import type { z } from "zod";
import { byName } from "../define.js";
import { auditList } from "./audit.js";
import { deviceList, deviceRevoke } from "./device.js";
import { entryGet, entryList, entrySearch } from "./entry.js";
import { modelList } from "./model.js";
import { notifyAdd, notifyList, notifyRemove, notifyTest } from "./notify.js";
import { projectCreate, projectDelete, projectList } from "./project.js";
import { proposalCreate, proposalList } from "./proposal.js";
import { rpcDiscover } from "./rpc.js";
import { runAbort, runBudget, runCreate, runGet, runHistory, runList, runPrompt, runResolve } from "./run.js";
import { runnerAttach, runnerDrain, runnerList, runnerPools, runnerQueue } from "./runner.js";
import { initialize, ping } from "./session.js";
import {
  stream,
  streamAborted,
  streamCancel,
  streamClaim,
  streamCompleted,
  streamEof,
  streamInput,
  streamResize,
  streamSignal,
  streamSubscribe,
  streamUnsubscribe,
} from "./stream.js";
import { tokenCreate, tokenList, tokenRevoke } from "./token.js";

/** Every request a client may send, one descriptor each. */
export const METHODS = [
  ping,
  initialize,
  rpcDiscover,
  projectList,
  projectCreate,
  projectDelete,
  modelList,
  runCreate,
  runGet,
  runList,
  runPrompt,
  runAbort,
  runBudget,
  runHistory,
  runResolve,
  proposalCreate,
  proposalList,
  entryGet,
  entryList,
  entrySearch,
  runnerAttach,
  runnerList,
  runnerDrain,
  runnerPools,
  runnerQueue,
  stream,
  streamCompleted,
  streamAborted,
  streamCancel,
  streamClaim,
  streamSubscribe,
  streamUnsubscribe,
  streamInput,
  streamEof,
  streamSignal,
  streamResize,
  tokenCreate,
  tokenList,
  tokenRevoke,
  deviceList,
  deviceRevoke,
  notifyAdd,
  notifyList,
  notifyRemove,
  notifyTest,
  auditList,
] as const;

/** Every request keyed by its name: `methods["run/create"].params`. */
export const methods = byName(METHODS);

export type Methods = typeof methods;
export type MethodName = keyof Methods;
/** What a caller passes (defaults not applied yet). */
export type ParamsOf<M extends MethodName> = z.input<Methods[M]["params"]>;
/** What a caller gets back, as the result schema reads it. */
export type ResultOf<M extends MethodName> = z.output<Methods[M]["result"]>;
/** Every method: what to send, what comes back. */
export type SpoolMethods = { [M in MethodName]: { params: ParamsOf<M>; result: ResultOf<M> } };
