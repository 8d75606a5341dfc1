/** A path-safe slug from a command: lowercase words joined by '-', never '_' (channel paths add `_N`). */
export function slugFromCommand(command: string): string {
  const slug = command
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
  return slug || "cmd";
}

export const logPath = (turn: number, tool: string, slug: string) => `log://turn_${turn}/${tool}/${slug}`;
export const channelPath = (tool: string, turn: number, slug: string, channel: number) => `${tool}://turn_${turn}/${slug}_${channel}`;

/** Splits a log path back into its parts; null when it is not a producer's log path. */
export function parseLogPath(path: string): { turn: number; tool: string; slug: string } | null {
  const m = /^log:\/\/turn_(\d+)\/([a-z][a-z0-9+.-]*)\/([a-z0-9-]+)$/.exec(path);
  return m ? { turn: Number(m[1]), tool: m[2]!, slug: m[3]! } : null;
}
