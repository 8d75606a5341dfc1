import { type ListResourcesResult, ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server";
import { SpoolRpcError, type StreamWatch } from "../../client/spool-client.js";
import { escapeControl, factsText } from "../../protocol/proposal-facts.js";
import { producerOf } from "../../protocol/views.js";
import type { McpExtras } from "./extras.js";
import { readOutput, report } from "./output.js";
import { THROTTLE_MS } from "./progress.js";
import { parseProposalsUri, parseResourceUri, resourceUri } from "./resource-uri.js";
import { LIST_LIMIT, type Session, type SpoolSide } from "./spool-side.js";
import { message, STATUS, statusWord, ToolFailure } from "./text.js";

/*
 * MCP resources: each command's output is one, at spool://RUN/PATH (src/mcp/spool/resource-uri.ts); resources/list
 * shows this connection's commands, and a subscription follows one until it ends. The proposals waiting for a
 * decision are one too, the project's at spool://proposals and a run's at spool://RUN/proposals: a subscription
 * is updated when one appears or is decided (as a 2026-07-28 subscriptions/listen is, src/mcp/stateless/listen-watch.ts).
 */

/** resources/list: this connection's run's commands that ended, each one's output. */
export async function listResources(side: SpoolSide): Promise<ListResourcesResult> {
  const others = [...(side.options.extras?.resources?.listed ?? [])];
  const session = await side.ready();
  if (session.run === null) return { resources: others };
  const run = session.run;
  const { entries } = await session.client.call("entry/list", { run, pattern: "log://*", status: STATUS.done, limit: LIST_LIMIT });
  return {
    resources: [
      ...entries.map((e) => {
        const { command, endStatus } = producerOf(e);
        return {
          uri: resourceUri(run, e.path),
          name: e.path,
          title: `$ ${escapeControl(command)}`,
          description: `Output of a command of run ${run} (${endStatus !== null ? statusWord(endStatus) : "running"})`,
          mimeType: "text/plain",
        };
      }),
      ...others,
    ],
  };
}

/** resources/templates/list: a command's output by run and path (the same for every caller), then `extras`'. */
export function resourceTemplates(extras?: McpExtras) {
  return {
    resourceTemplates: [
      {
        uriTemplate: "spool://{run}/{path}",
        name: "command-output",
        title: "A command's output",
        description: "The output of the command at PATH (its log path, e.g. log://turn_1/sh/ls, or one channel's path) in run RUN of this project",
        mimeType: "text/plain",
      },
      ...(extras?.resources?.templates ?? []),
    ],
  };
}

/** resources/read: a command's (or a channel's) output, or the proposals waiting; one not found is -32002 with its uri. */
export async function readResource(side: SpoolSide, uri: string) {
  const other = side.options.extras?.resources?.read(uri);
  if (other) return { contents: other };
  const session = await side.ready();
  const proposals = parseProposalsUri(uri);
  if (proposals) return { contents: [{ uri, mimeType: "text/plain", text: await pendingText(session, proposals.run) }] };
  const parsed = parseResourceUri(uri);
  if (!parsed) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `not a Spool resource: ${uri} (spool://RUN/PATH)`);
  try {
    const result = parsed.path.startsWith("log://") ? await report(session, parsed.run, parsed.path, null) : await readOutput(side, { path: uri }, session);
    const body = result.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
    return { contents: [{ uri, mimeType: "text/plain", text: body }] };
  } catch (error) {
    if (error instanceof ToolFailure || (error instanceof SpoolRpcError && (error.errorCode === "NOT_FOUND" || error.errorCode === "INVALID_PARAMS")))
      throw new ProtocolError(ProtocolErrorCode.ResourceNotFound, `Resource not found: ${uri}`, { uri });
    throw error;
  }
}

/**
 * A command's output at `uri` (its `target`) followed: `updated` as it grows (at most every THROTTLE_MS) and once
 * when it ends, never after `stop`. `started` settles once the watch is set up (a failure is logged, not thrown).
 */
export function followOutput(
  side: SpoolSide,
  session: Session,
  target: Promise<{ run: string; path: string }>,
  uri: string,
  updated: () => void,
): { started: Promise<unknown>; stop: () => Promise<void> } {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const soon = () => {
    if (stopped) return;
    timer ??= setTimeout(() => {
      timer = null;
      if (!stopped) updated();
    }, THROTTLE_MS);
  };
  const watching: Promise<StreamWatch | null> = target
    .then((t) => session.client.watch({ run: t.run, path: t.path }, () => soon()))
    .then((watch) => {
      // Its end is an update too (the status line changes), sent once its last output went out.
      void watch.ended.then(() => {
        if (timer) clearTimeout(timer);
        timer = null;
        if (!stopped) updated();
      });
      return watch;
    })
    .catch((error: unknown) => {
      side.log.warn(`following ${uri}: ${message(error)}`);
      return null;
    });
  return {
    started: watching,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await (await watching)?.close().catch(() => undefined);
    },
  };
}

/**
 * The proposals resources among `uris`: each updated when a proposal appears (run/proposal) or is decided
 * (run/resolved) in its run, or for spool://proposals in any run of the project (the Spool connection is told
 * of every one). Returns what stops following them.
 */
export function followProposals(session: Session, uris: string[], updated: (uri: string) => void): () => void {
  const followed = uris.flatMap((uri) => {
    const parsed = parseProposalsUri(uri);
    return parsed ? [{ uri, run: parsed.run }] : [];
  });
  if (followed.length === 0) return () => undefined;
  const changed = (p: { run: string }) => {
    for (const f of followed) if (f.run === null || f.run === p.run) updated(f.uri);
  };
  const offs = [session.client.on("run/proposal", changed as never), session.client.on("run/resolved", changed as never)];
  return () => {
    for (const off of offs) off();
  };
}

/** The proposals waiting for a decision (the project's, or `run`'s), oldest first, with the facts every client shows. */
async function pendingText(session: Session, run: string | null): Promise<string> {
  const { proposals, next } = await session.client.call("proposal/list", { ...(run ? { run } : {}), limit: 200 });
  if (proposals.length === 0) return run ? `no proposal of run ${run} waits for a decision` : "no proposal of this project waits for a decision";
  const shown = proposals.map((p) => `${p.run} ${p.path}\n${factsText(p.producer, { indent: "  " })}`);
  return `${shown.join("\n\n")}${next !== null ? "\n\n(more: spool pending lists them all)" : ""}`;
}
