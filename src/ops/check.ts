/** ok: fine; info: not set up, and nothing asks for it; warn: works, but not as it should; fail: the configuration asks for it and it is missing, or it is unsafe. */
export type CheckStatus = "ok" | "info" | "warn" | "fail";

export interface Check {
  name: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** What to do about it (every warn and fail has one). */
  fix?: string;
  data?: Record<string, unknown>;
}
