const VOLATILE = new Set(["createdAt", "updatedAt", "time", "connectionId", "root", "url"]);

/** Replaces values that legitimately differ between two servers (times, random ids, their addresses). */
export function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, VOLATILE.has(k) ? `<${k}>` : normalize(v)]));
  }
  return value;
}

/** A settled call as plain data: `{result}` or `{error: {code, data}}`. */
export async function outcome(call: Promise<unknown>): Promise<unknown> {
  try {
    return { result: normalize(await call) };
  } catch (error) {
    const e = error as { code?: number; data?: unknown; message?: string };
    return { error: { code: e.code, data: normalize(e.data) } };
  }
}
