import { type SpoolClient, SpoolRpcError } from "../../client/spool-client.js";
import { ProducerEofParams, ProducerInputParams, ProducerResizeParams, ProducerSignalParams } from "../../protocol/runner.js";
import { ERRORS } from "../../rpc/errors.js";
import { ControlError, type ExecutionControl } from "../backend.js";
import type { Job } from "./job.js";

type Refusal = "UNSUPPORTED" | "STREAM_CLOSED" | "LIMIT_EXCEEDED";

/** An error reply the server passes on to the client that sent the control. */
export const refuse = (code: Refusal, message: string) => new SpoolRpcError(message, ERRORS[code].code, { code });

const REFUSALS: Record<ControlError["kind"], Refusal> = { unsupported: "UNSUPPORTED", closed: "STREAM_CLOSED", busy: "LIMIT_EXCEEDED" };

function apply(action: () => void): void {
  try {
    action();
  } catch (error) {
    if (error instanceof ControlError) throw refuse(REFUSALS[error.kind], error.message);
    throw error;
  }
}

async function applyAsync(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof ControlError) throw refuse(REFUSALS[error.kind], error.message);
    throw error;
  }
}

/**
 * Answers the server's controls of running commands on `client`: input, end of input, signals and resizes.
 * `controlled` finds the running job a control names, or refuses the control.
 */
export function handleControls(client: SpoolClient, controlled: (run: string, path: string) => Promise<Job & { control: ExecutionControl }>): void {
  client.handle("producer/input", async (params: unknown) => {
    const p = ProducerInputParams.parse(params);
    const job = await controlled(p.run, p.path);
    if (p.seq <= job.inputSeq) return { applied: true };
    apply(() => job.control.write(Buffer.from(p.data, "base64")));
    job.inputSeq = p.seq;
    return { applied: true };
  });
  client.handle("producer/eof", async (params: unknown) => {
    const p = ProducerEofParams.parse(params);
    const job = await controlled(p.run, p.path);
    apply(() => job.control.end());
    return { applied: true };
  });
  client.handle("producer/signal", async (params: unknown) => {
    const p = ProducerSignalParams.parse(params);
    const job = await controlled(p.run, p.path);
    await applyAsync(() => job.control.signal(p.signal));
    return { applied: true };
  });
  client.handle("producer/resize", async (params: unknown) => {
    const p = ProducerResizeParams.parse(params);
    const job = await controlled(p.run, p.path);
    await applyAsync(() => job.control.resize({ cols: p.cols, rows: p.rows }));
    return { applied: true };
  });
}
