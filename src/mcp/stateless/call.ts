import { CLIENT_CAPABILITIES_META_KEY, type ClientCapabilities, ProtocolError, ProtocolErrorCode, type ServerContext } from "@modelcontextprotocol/server";
import { z } from "zod";
import { factsChanged, SpoolRpcError } from "../../client/spool-client.js";
import { type McpCaller, mayDecide } from "../spool/caller.js";
import { answerOf, approvalForm, changedNote, decide, factsShown, type Shown } from "../spool/decision.js";
import type { McpExtras } from "../spool/extras.js";
import { follow, propose } from "../spool/run-command.js";
import { type BridgeLog, extraOf, type Session, type SpoolSide } from "../spool/spool-side.js";
import { failure } from "../spool/text.js";
import { RunCommandArgs } from "../spool/tool-schemas.js";
import { isTool, callTool as runTool } from "../spool/tools.js";
import { RequestStateError, type RequestStates, requestDigest } from "./request-state.js";
import { createdTask, DECISION_KEY } from "./tasks.js";
import { declaresTasks, elicitsForm } from "./wire.js";

/*
 * tools/call under MCP 2026-07-28: run_command as a task (with the tasks extension), as an approval elicited
 * with a multi round-trip request (input_required, then the retry carrying the decision and Spool's single-use
 * requestState), or as the call it always was; every other tool as src/mcp/spool/tools.ts runs it.
 */

/** What every request's server shares. */
export interface ServerDeps {
  version: string;
  /** Which Spool server it is a client of, in words added to the instructions (stdio: the home's). */
  where?: string | undefined;
  extras?: McpExtras | undefined;
  log: BridgeLog;
  /** The single-use states of elicited decisions (request-state.ts). */
  states: RequestStates;
}

/** The caller's kept Spool connection, for the methods that need one (none: the tool list and discovery only). */
export interface Connection {
  caller: McpCaller;
  side: SpoolSide;
}

/** The client's capabilities, from the request's envelope. */
export function capabilitiesOf(ctx: ServerContext): ClientCapabilities {
  const envelope = (ctx.mcpReq.envelope ?? {}) as Record<string, unknown>;
  return (envelope[CLIENT_CAPABILITIES_META_KEY] ?? {}) as ClientCapabilities;
}

const invalid = (text: string, data?: unknown) => new ProtocolError(ProtocolErrorCode.InvalidParams, text, data);

export async function callTool(deps: ServerDeps, connection: Connection, params: Record<string, unknown>, ctx: ServerContext) {
  const { side, caller } = connection;
  const extra = extraOf(ctx);
  // A tool Spool does not offer is a protocol error (the spec's -32602), not a result the model reads as the tool's.
  if (typeof params.name !== "string" || !isTool(params.name, deps.extras)) throw invalid(`Unknown tool: ${String(params.name)} (tools/list names the tools)`);
  if (params.name !== "run_command") return { ...(await runTool(side, params.name, params.arguments as Record<string, unknown> | undefined, extra)) };
  const args = z
    .object(RunCommandArgs)
    .strict()
    .safeParse(params.arguments ?? {});
  if (!args.success) throw invalid(`run_command: ${args.error.issues.map((i) => `${i.path.join(".") || "arguments"}: ${i.message}`).join("; ")}`);
  const session = await side.ready();
  const digest = requestDigest("tools/call", "run_command", params.arguments ?? {});
  const state = ctx.mcpReq.requestState();
  // The retry of an elicited approval: its state is checked before anything else is done.
  if (typeof state === "string") {
    const decided = await redeem(deps.states, connection, session, { state, digest, responses: ctx.mcpReq.inputResponses ?? {} });
    return "answer" in decided ? decided.answer : { ...(await follow(side, args.data, extra, session, decided.follow)) };
  }
  const capabilities = capabilitiesOf(ctx);
  const tasks = declaresTasks(capabilities);
  const asks = mayDecide(caller) && elicitsForm(capabilities);
  if (!tasks && !asks) return { ...(await runTool(side, "run_command", params.arguments as Record<string, unknown> | undefined, extra)) };
  const proposed = await propose(side, args.data, session, params, extra);
  if ("content" in proposed) return { ...proposed };
  // The SDK checks a tools/call result as a CallToolResult, content and all (it adds none beside inputRequests).
  if (tasks)
    return { content: [], ...(await createdTask(session, proposed.run, proposed.path, { mayDecide: mayDecide(caller), elicits: elicitsForm(capabilities) })) };
  // Decided already (an always-allow rule): no question to ask.
  const log = await session.client.call("entry/get", { run: proposed.run, path: proposed.path, limit: 1 });
  if (log.producer?.state === "proposed") return ask(deps.states, proposed, await factsShown(session, proposed.run, proposed.path), digest, caller.name);
  return { ...(await follow(side, args.data, extra, session, proposed)) };
}

/**
 * A retry carrying a decision: its requestState redeemed (once, by the principal and request it was issued for),
 * the decision made; the proposal to follow, or what to answer instead (asked again on changed facts, a run not
 * this connection's).
 */
async function redeem(
  states: RequestStates,
  { caller }: Connection,
  session: Session,
  retry: { state: string; digest: string; responses: Record<string, unknown> },
): Promise<{ follow: { run: string; path: string } } | { answer: Record<string, unknown> }> {
  let state: Awaited<ReturnType<RequestStates["redeem"]>>;
  try {
    state = await states.redeem(retry.state, { principal: caller.name, request: retry.digest });
  } catch (error) {
    if (error instanceof RequestStateError) throw invalid(error.message);
    throw error;
  }
  const response = retry.responses[DECISION_KEY] as { action?: unknown; content?: Record<string, unknown> } | undefined;
  const answer = response && typeof response === "object" ? answerOf(response) : null;
  if (answer) {
    try {
      await decide(session, state, answer, state.facts);
    } catch (error) {
      // The facts changed since the form showed them (nothing ran): asked again on the facts now, saying why.
      if (factsChanged(error)) {
        const shown = await factsShown(session, state.run, state.path);
        if (shown.proposed) return { answer: await ask(states, state, shown, retry.digest, caller.name, changedNote(error.message)) };
      } else if (error instanceof SpoolRpcError && error.errorCode === "CONFLICT")
        throw invalid(`${state.path} was decided already: this answer decides nothing (${error.message})`);
      else throw error;
    }
  }
  if (session.run !== state.run)
    return {
      answer: {
        ...failure(`${state.path} of run ${state.run} was ${answer?.decision ?? "left"}ed; read_output reaches it by spool://${state.run}/${state.path}`),
      },
    };
  return { follow: { run: state.run, path: state.path } };
}

/** The input_required answer that asks the caller to decide a proposal on the facts shown, with its requestState. */
async function ask(states: RequestStates, proposal: { run: string; path: string }, shown: Shown, request: string, principal: string, note?: string) {
  const { run, path } = proposal;
  return {
    resultType: "input_required",
    inputRequests: { [DECISION_KEY]: { method: "elicitation/create", params: approvalForm(run, path, shown, note) } },
    requestState: await states.issue({ run, path, facts: shown.revision, request }, principal),
  };
}
