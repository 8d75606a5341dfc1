import { expect } from "vitest";
import type { Backend, ExecResult, ExecSpec } from "../../src/runners/backend.js";
import type { ExecSandbox } from "../../src/runners/sandbox/sandbox.js";

/** The sandbox modes a view test runs in, with the tool each proposes under. */
export const MODES = [
  ["workspace-write", "sh"],
  ["read-only", "env"],
] as const;

/** Reads each file, saying which it could; lists the home; then the mount table, after a marker line. */
export const probe = (files: readonly string[]) =>
  `for f in ${files.join(" ")}; do cat "$f" 2>/dev/null && echo "read $f"; done; ls -A ~; echo "--- mountinfo"; cat /proc/self/mountinfo`;

/** What `probe` printed: the lines before the mount table, and the table. */
export function split(out: string): { seen: string; mountinfo: string } {
  const at = out.indexOf("--- mountinfo\n");
  expect(at, out).toBeGreaterThanOrEqual(0);
  return { seen: out.slice(0, at), mountinfo: out.slice(at) };
}

/** A command in a sandbox mode without network, `root` its directory and workspace, and the configured `view` if any. */
export const viewSpec = (command: string, root: string, mode: ExecSandbox["mode"], view?: ExecSandbox["view"]): ExecSpec => ({
  command,
  cwd: root,
  workspace: root,
  env: {},
  sandbox: { mode, network: false, ...(view ? { view } : {}) },
  signal: new AbortController().signal,
});

/** No toolchains and no configured paths: what a remote host's sandbox shows of its own. */
export const NO_VIEW = { toolchains: [], read: [], write: [] } satisfies ExecSandbox["view"];

/**
 * Starts `spec` on `backend` and waits for its end: its standard output and result. `onOut` hears all of the output so
 * far after each chunk (to act while the command waits). Rejects as the start does.
 */
export async function output(backend: Backend, spec: ExecSpec, onOut?: (out: string) => void): Promise<{ out: string; result: ExecResult }> {
  const execution = await backend.start(spec);
  let out = "";
  execution.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    onOut?.(out);
  });
  execution.stderr.resume();
  const result = await execution.result;
  return { out, result };
}

/** As `output`, for a start that may be refused: what the command printed, and "ran" or the refusal's text. */
export async function refusal(backend: Backend, spec: ExecSpec): Promise<{ out: string; ran: string }> {
  return output(backend, spec).then(
    ({ out }) => ({ out, ran: "ran" }),
    (error: unknown) => ({ out: "", ran: String(error) }),
  );
}
