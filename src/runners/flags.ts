import { readFileSync } from "node:fs";
import type { Backend, ProcessRecorder } from "./backend.js";

/**
 * How `spool runner` builds a backend from its flags (src/runners/backends.ts holds one row per backend, each from its
 * own folder). An option is described as the command table describes it (src/cli/command-spec.ts `OptionDef`).
 */
export interface FlagDef {
  readonly type: "string" | "boolean";
  readonly multiple?: boolean;
  readonly arg?: string;
  readonly help: string;
  /** A line drawn above it in the help: the backend's name (` docker:`). */
  readonly heading?: string;
}

/** The flags as parsed. */
export type FlagValues = Readonly<Record<string, string | boolean | string[] | undefined>>;

/** What every backend is built with, read from the flags all runners take. */
export interface CommonSettings {
  /** TERM → KILL grace when cancelling (`--kill-grace`). */
  killGraceMs: number;
  /** `--sandbox off`: none; otherwise one where the backend has it. */
  sandbox: "auto" | "off";
  /** Where the project root is on the backend (`--root`). */
  root?: string;
  /** Where the local backend records the process groups it starts. */
  processes?: ProcessRecorder;
}

/** One backend's row: its own flags and how they build it. */
export interface BackendRow {
  /** The flags only this backend reads, shown under its name in `spool runner --help`. */
  readonly flags: Readonly<Record<string, FlagDef>>;
  /** The backend the flags ask for; its module is imported here, only for its own runners (dockerode and ssh2 are big). */
  build(values: FlagValues, common: CommonSettings): Promise<Backend>;
  /** The files of the flags that are credentials (an SSH key), kept from every sandboxed command like the runner's own state. */
  secrets?(values: FlagValues): string[];
}

/** `--NAME`'s value as a positive integer, `fallback` when it is not given. */
export function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
  return value;
}

/** `--NAME`'s value, or an error saying it is required. */
export function need(name: string, value: string | undefined): string {
  if (!value) throw new Error(`--${name} is required (see spool runner --help)`);
  return value;
}

/** A file a flag names, or an error naming the flag. */
export function readFlagFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`--${name} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

/** A string flag's value (undefined: not given). */
export const stringFlag = (values: FlagValues, name: string): string | undefined => values[name] as string | undefined;
