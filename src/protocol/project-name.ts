/** Project names: a safe one derived from any directory name (the server and the CLI derive alike). No zod: every `spool` command reads these. */

/** Project names: what they may hold. */
export const PROJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const PROJECT_NAME_RULE = "a project name is 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit";

/**
 * A valid project name from a directory's base name: accents dropped ("ünï" → "uni"), every run of
 * other characters becomes one '-' ("My App" → "My-App"), leading punctuation removed, at most 100
 * characters (room for a "-N" suffix); "project" when nothing is left.
 */
export function projectNameFrom(dirName: string): string {
  const name = dirName
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/^[._-]+/, "")
    .replace(/-{2,}/g, "-")
    .slice(0, 100)
    .replace(/[-.]+$/, "");
  return name || "project";
}

/** `base`, then `base-2`, `base-3`, … for when the plain name is taken. */
export function nameCandidates(base: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => (i === 0 ? base : `${base}-${i + 1}`));
}
