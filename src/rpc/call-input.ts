// The seam between a request as it arrived and a handler: where a call's params come from (JSON text, a binary
// frame's bytes, an in-process Buffer), how they are checked (a method's quick check, else its schema), and how its
// result is checked (the same two ways). Parse, then call: rpc-host.ts calls these and nothing else about params.
// Built for the fewest objects a call: the quick paths allocate nothing (one call a stream chunk).

import type { z } from "zod";
import type { Logger } from "../logger.js";
import { type RpcErrorObject, rpcError, SpoolError } from "./errors.js";
import type { MethodDefinition } from "./method.js";

/** Params a schema refused: the error the call answers with. */
export class ParamsRefused {
  constructor(readonly error: RpcErrorObject) {}
}

/**
 * A binary frame's header params with its bytes in the place of the method's bytes field (filled in place: the
 * header was parsed for this call alone, and a copy with a computed key is a slow object for every check after it).
 */
export function frameParams(def: MethodDefinition, params: unknown): unknown {
  const field = def.bytes;
  if (field === undefined) throw new SpoolError("INVALID_PARAMS", `${def.name} takes no binary frame; send it as JSON text`);
  if (field in (params as object)) {
    throw new SpoolError("INVALID_PARAMS", `A binary frame carries ${field} as its bytes: leave it out of the header's params`, {
      issues: [{ path: field, message: "in the header of a binary frame" }],
    });
  }
  if (typeof params === "object" && params !== null) {
    (params as Record<string, unknown>)[field] = "";
    return params;
  }
  return { [field]: "" };
}

/** The Buffer an in-process caller put in the method's bytes field (the embedded runner), if it did. */
export function inlineBytes(def: MethodDefinition, params: unknown): Buffer | undefined {
  const field = def.bytes;
  if (field === undefined || typeof params !== "object" || params === null) return undefined;
  const value = (params as Record<string, unknown>)[field];
  return Buffer.isBuffer(value) ? value : undefined;
}

/** The params with an inline Buffer's field emptied, for the checks (the handler gets the Buffer as ctx.bytes). */
export function withoutInlineBytes(def: MethodDefinition, params: unknown): unknown {
  return { ...(params as object), [def.bytes!]: "" };
}

/** The params the handler gets: the method's quick check's (nothing copied), else its schema's; or why they are refused. */
export function checkedParams(def: MethodDefinition, params: unknown): unknown {
  const quick = def.quickParams?.(params);
  if (quick !== undefined) return quick;
  const parsed = def.params.safeParse(params);
  if (parsed.success) return parsed.data;
  return new ParamsRefused(rpcError("INVALID_PARAMS", `Invalid params for ${def.name}`, { issues: describeIssues(parsed.error) }));
}

/** The result as it is sent: as it is when the quick check knows it (the same JSON), else the schema's; or an internal error, logged. */
export function checkedResult(def: MethodDefinition, result: unknown, log: Logger): { ok: true; value: unknown } | { ok: false; error: RpcErrorObject } | true {
  if (def.quickResult?.(result)) return true;
  const checked = def.result.safeParse(result);
  if (checked.success) return { ok: true, value: checked.data };
  log.error(`result of ${def.name} does not match its schema`, describeIssues(checked.error));
  return { ok: false, error: rpcError("INTERNAL_ERROR", "Internal error") };
}

/** Turns zod issues into `[{path: "a.b", message}]`, the shape documented for INVALID_PARAMS. */
export function describeIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.flatMap((issue) => plainIssues(issue, [])).map(({ path, message }) => ({ path: path.map(String).join(".") || "(params)", message }));
}

type PlainIssue = { path: PropertyKey[]; message: string; unknownFields: boolean };

/**
 * One zod issue as the caller can act on it. A union's bare "Invalid input" is replaced by the issues of the one
 * alternative that got furthest (its deepest path; then the one that named no unknown field; then the fewest issues),
 * so `{labels: {"a b": "x"}}` says what is wrong with the label key; when no alternative stands out, the union's
 * own message stays. A record's bad key says why the key is refused.
 */
function plainIssues(issue: z.core.$ZodIssue, prefix: PropertyKey[]): PlainIssue[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === "unrecognized_keys") return [{ path, message: `unknown field(s): ${issue.keys.join(", ")}`, unknownFields: true }];
  if (issue.code === "invalid_key" && issue.issues[0])
    return [{ path, message: `${issue.issues[0].message} (the key "${String(path.at(-1))}")`, unknownFields: false }];
  if (issue.code === "invalid_union" && issue.errors.length > 1) {
    const branches = issue.errors.map((branch) => branch.flatMap((inner) => plainIssues(inner, path)));
    const score = (b: PlainIssue[]) => [Math.max(...b.map((i) => i.path.length)), b.some((i) => i.unknownFields) ? 0 : 1, -b.length];
    const scored = branches.map(score);
    const best = scored.findIndex((s, i) => scored.every((other, j) => j === i || compareScores(s, other) > 0));
    if (best >= 0) return branches[best]!;
  }
  return [{ path, message: issue.message, unknownFields: false }];
}

/** Orders two scores as tuples: the first differing place decides. */
function compareScores(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
