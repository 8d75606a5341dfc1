import { expect } from "vitest";

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
