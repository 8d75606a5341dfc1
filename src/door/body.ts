import type { IncomingMessage } from "node:http";
import { ERRORS } from "../protocol/errors.js";
import { DoorError } from "./errors.js";

/** When a request's body must have arrived: `until` on performance.now()'s clock, `ms` after the request came. */
export interface BodyDeadline {
  until: number;
  ms: number;
}

/**
 * A body declared over this is refused at once, unread, and its connection cut after the answer; one declared over
 * the door's bound but under this is read and dropped first (below).
 */
export const DROPPED_AT_MOST = 16 * 1024 * 1024;

/**
 * A request's body, at most `maxBytes`, arrived whole by its deadline: a body larger than that is 413, one that has
 * not arrived by then is 408 and its connection is cut once the answer is out (a body sent a byte at a time holds
 * nothing for minutes). Before a 413 the rest of the body is read and dropped (up to DROPPED_AT_MOST, and within the
 * deadline): a server that closes a connection with a body still arriving resets it, and the reset can destroy the
 * answer before the client reads it (a client then sees its request fail, not a 413).
 */
export function readBody(request: IncomingMessage, maxBytes: number, deadline: BodyDeadline): Promise<Buffer> {
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > Math.max(maxBytes, DROPPED_AT_MOST)) return Promise.reject(tooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let over = declared > maxBytes;
    const done = (settle: () => void) => {
      clearTimeout(timer);
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("error", onError);
      settle();
    };
    const onData = (part: Buffer) => {
      if (over) return;
      size += part.length;
      if (size > maxBytes) {
        over = true;
        parts.length = 0;
        return;
      }
      parts.push(part);
    };
    const onEnd = () => done(() => (over ? reject(tooLarge(maxBytes)) : resolve(Buffer.concat(parts))));
    const onError = (error: Error) => done(() => reject(error));
    const timer = setTimeout(
      () => {
        request.pause();
        done(() => reject(new BodyTimeout(deadline.ms)));
      },
      Math.max(0, deadline.until - performance.now()),
    );
    request.on("data", onData);
    request.once("end", onEnd);
    request.once("error", onError);
  });
}

/** The body did not arrive in time: answered 408, then its connection is cut (`Connection: close`). */
export class BodyTimeout extends DoorError {
  constructor(ms: number) {
    super(408, `The request's body did not arrive within ${ms} ms (limits.bodyDeadlineMs)`, { Connection: "close" });
  }
}

/** A JSON body as JSON-RPC clients send it, parsed. */
export async function readJson(request: IncomingMessage, maxBytes: number, deadline: BodyDeadline): Promise<unknown> {
  const type = String(request.headers["content-type"] ?? "");
  if (!/^application\/json\b/i.test(type)) throw new DoorError(415, "Send JSON-RPC as application/json");
  const body = await readBody(request, maxBytes, deadline);
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new DoorError(400, "Parse error: the body is not JSON", {}, ERRORS.PARSE_ERROR.code);
  }
}

const tooLarge = (max: number) => new DoorError(413, `The body is over ${max} bytes`);
