import type { RequestPermissionRequest, ToolCallContent } from "@agentclientprotocol/sdk";
import { ConnectionClosedError, factsChanged, SpoolRpcError } from "../client/spool-client.js";
import { escapeControl, factsRevision, factsText } from "../protocol/proposal-facts.js";
import { ENTRY } from "../protocol/status.js";
import { absoluteCwd, fenced, isCommandTool } from "./content.js";
import type { SessionScope, ToolView } from "./scope.js";

/** An editor's answer given while the server connection is down is sent this many times at most… */
const RESOLVE_ATTEMPTS = 5;
/** …each after waiting this long at most for the connection to come back. */
const RECONNECT_WAIT_MS = 60_000;

const PERMISSION_OPTIONS: RequestPermissionRequest["options"] = [
  { optionId: "allow_once", name: "Allow", kind: "allow_once" },
  { optionId: "allow_always", name: "Always allow this command in this session", kind: "allow_always" },
  { optionId: "reject_once", name: "Reject", kind: "reject_once" },
];

const isDecided = (error: unknown) => error instanceof SpoolRpcError && (error.errorCode === "CONFLICT" || error.errorCode === "NOT_FOUND");

/**
 * A proposal becomes `session/request_permission`; the editor's answer resolves it, unless someone decided
 * first. The request carries every fact a person must see (src/protocol/proposal-facts.ts): as text in
 * the tool call's content (escaped, in a code block so nothing in it reads as Markdown; before the
 * terminal when the editor shows one), and as values in its rawInput. An accept names the facts revision shown; when
 * the facts changed since (FACTS_CHANGED: the runner's server stopped and another's runner takes it), nothing ran and
 * the editor is asked again on the facts as they are now, `changed` saying why.
 */
export function askEditor(scope: SessionScope, view: ToolView, defaultRunner: string | null, changed?: string): void {
  const controller = new AbortController();
  view.permission = controller;
  const path = view.path!;
  const facts = view.facts!;
  const { editor, log } = scope;
  const note = changed ? `Not accepted: ${escapeControl(changed)}. The facts below are the new ones.` : null;
  const text = factsText(facts, { defaultRunner });
  const content: ToolCallContent[] = [
    ...(note ? [{ type: "content" as const, content: { type: "text" as const, text: note } }] : []),
    { type: "content", content: { type: "text", text: fenced(text) } },
  ];
  const terminal = editor.terminal && isCommandTool(view.tool);
  if (terminal) content.push({ type: "terminal", terminalId: view.id });
  const rawInput = {
    ...view.rawInput,
    tool: facts.tool,
    command: facts.command,
    cwd: facts.cwd ?? "",
    env: Object.fromEntries(facts.env),
    tty: facts.tty,
    runner: facts.runner,
    ...(facts.runner === null ? { defaultRunner: facts.defaultRunner ?? defaultRunner } : {}),
    sandbox: facts.sandbox.mode === "unknown" ? facts.sandbox.given : facts.sandbox.mode,
    network: facts.network,
    // Network mode allowlist: the project's list and the hosts the proposal asked for beyond it.
    ...(facts.egress ? { egress: facts.egress } : {}),
    background: facts.background,
    timeout_ms: facts.timeoutMs,
  };
  editor
    .requestPermission(
      {
        sessionId: scope.id,
        toolCall: { toolCallId: view.id, title: view.title, kind: view.kind, status: "pending", content, rawInput },
        options: PERMISSION_OPTIONS,
      },
      controller.signal,
      {
        command: facts.command,
        cwd: absoluteCwd(scope.link.root, facts.cwd),
        facts: note ? `${note}\n\n${text}` : text,
        terminalId: terminal ? view.id : null,
      },
    )
    .then(async (response) => {
      if (view.permission === controller) view.permission = null;
      // Withdrawn (someone else decided, or the turn was cancelled): a late answer changes nothing.
      if (controller.signal.aborted || scope.updates.closed) return;
      // Cancelled by the editor on its own (no session/cancel: e.g. it cannot ask anyone): that proposal is refused.
      const option = response.outcome.outcome === "selected" ? response.outcome.optionId : null;
      const params =
        option === "allow_once" || option === "allow_always"
          ? { run: scope.run, path, decision: "accept" as const, facts: factsRevision(facts), ...(option === "allow_always" ? { always: true } : {}) }
          : {
              run: scope.run,
              path,
              decision: "reject" as const,
              reason: option === null ? `${editor.name} cancelled the permission request` : `rejected in ${editor.name}`,
            };
      view.deciding = true;
      try {
        for (let attempt = 1; ; attempt++) {
          try {
            await scope.link.client.call("run/resolve", params);
            view.answered = true;
            return;
          } catch (error) {
            // The server connection is down (a restart): the answer is kept and sent once it is back.
            if (error instanceof ConnectionClosedError && attempt < RESOLVE_ATTEMPTS && (await scope.link.reconnected(RECONNECT_WAIT_MS))) continue;
            if (factsChanged(error)) return await askAgain(scope, view, defaultRunner, error.message);
            // Refused by a setting's rule (a command without a sandbox, which this principal may not accept): nothing
            // ran, it still waits, and the editor is told why rather than left with an answer that did nothing.
            if (refusedByRule(error)) return await showRefused(scope, view, error.message);
            if (!isDecided(error)) log.warn(`resolving ${path} failed: ${error instanceof Error ? error.message : String(error)}`);
            return;
          }
        }
      } finally {
        view.deciding = false;
      }
    })
    .catch((error: unknown) => {
      if (view.permission === controller) view.permission = null;
      if (!controller.signal.aborted && !scope.updates.closed)
        log.warn(`permission request for ${path} failed: ${error instanceof Error ? error.message : String(error)}`);
    });
}

/** The facts changed before the accept: the proposal read again and, if it still waits, asked about on its facts now. */
async function askAgain(scope: SessionScope, view: ToolView, defaultRunner: string | null, why: string): Promise<void> {
  const log = await scope.link.client.call("entry/get", { run: scope.run, path: view.path! });
  // Decided meanwhile (run/resolved tells the tool call), or the session went: nothing to ask.
  if (log.status !== ENTRY.proposed || !log.producer || view.resolved || scope.updates.closed) return;
  view.facts = log.producer;
  askEditor(scope, view, defaultRunner, why);
}

const refusedByRule = (error: unknown): error is SpoolRpcError =>
  error instanceof SpoolRpcError && error.errorCode === "FORBIDDEN" && typeof (error.data as { rule?: unknown } | undefined)?.rule === "string";

/** An accept a setting's rule refused: the facts again, the server's words, and that it still waits for one who may. */
async function showRefused(scope: SessionScope, view: ToolView, why: string): Promise<void> {
  const text = `${fenced(factsText(view.facts!, { defaultRunner: null }))}\nNot accepted: ${escapeControl(why)}`;
  await scope.updates.send({
    sessionUpdate: "tool_call_update",
    toolCallId: view.id,
    status: "pending",
    content: [{ type: "content", content: { type: "text", text } }],
  });
}

/**
 * A proposal shown to an editor whose principal may not decide it (a viewer, an agent): the facts every client shows,
 * in the tool call, and no question, since no answer from it could change anything. Someone who may decides elsewhere.
 */
export async function showUndecided(scope: SessionScope, view: ToolView): Promise<void> {
  const facts = view.facts!;
  const text = `${fenced(factsText(facts, { defaultRunner: null }))}\nWaiting for a person to decide (this connection may not).`;
  await scope.updates.send({
    sessionUpdate: "tool_call_update",
    toolCallId: view.id,
    status: "pending",
    content: [{ type: "content", content: { type: "text", text } }],
  });
}

/**
 * Withdraws an open permission request (`$/cancel_request`): someone decided elsewhere, or the turn was
 * cancelled. ACP has no outcome for "decided elsewhere": the editor answers `cancelled`, which changes
 * nothing here, and the tool call's updates then show what happened to the command.
 */
export function withdraw(view: ToolView): void {
  view.permission?.abort(new Error("decided elsewhere"));
  view.permission = null;
}
