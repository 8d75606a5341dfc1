/** Entry paths (SPEC §4): a producer's log entry `log://turn_N/{tool}/{slug}` and its data channels `{tool}://turn_N/{slug}_{channel}`. */

export const logPath = (turn: number, tool: string, slug: string) => `log://turn_${turn}/${tool}/${slug}`;
export const channelPath = (tool: string, turn: number, slug: string, channel: number) => `${tool}://turn_${turn}/${slug}_${channel}`;

/** Splits a log path back into its parts; null when it is not a producer's log path. */
export function parseLogPath(path: string): { turn: number; tool: string; slug: string } | null {
  const m = /^log:\/\/turn_(\d+)\/([a-z][a-z0-9+.-]*)\/([a-z0-9-]+)$/.exec(path);
  return m ? { turn: Number(m[1]), tool: m[2]!, slug: m[3]! } : null;
}
