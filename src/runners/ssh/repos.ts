import { UNTRUSTED_SUFFIX } from "../new-repos.js";
import { GIT_SEARCH } from "../sandbox/workspace.js";
import { shellQuote } from "../streams.js";

/*
 * The SSH runner's look for the git repositories a workspace-write command made (runners/new-repos.ts), in two shells
 * of the remote host beside the command's: one before it starts (the host's clock, and the repositories the sandbox
 * binds read-only, found as streams.ts's script finds them), one after its channel closed (its sandbox gone with it),
 * which renames what was made since and prints a line for each.
 */

/** The real path of `workspace` on the host in "$W", or an end with nothing said. */
const realWorkspace = (workspace: string) => `W=$(cd -P -- ${shellQuote(workspace)} 2>/dev/null && pwd) || exit 0`;

/** Prints the host's time (seconds) on the first line, then each repository the sandbox will bind read-only. */
export function repositoriesBefore(workspace: string): string {
  return [
    realWorkspace(workspace),
    "date +%s",
    `find "$W" -mindepth 1 -maxdepth ${GIT_SEARCH.depth} -name node_modules -prune -o -name .git -print -prune -o -type f -name HEAD -print 2>/dev/null | head -n ${GIT_SEARCH.directories} | while IFS= read -r g; do case "$g" in */HEAD) g=\${g%/HEAD}; [ -d "$g/objects" ] && [ -d "$g/refs" ] || continue ;; esac; printf '%s\\n' "$g"; done`,
  ].join("; ");
}

/** What `repositoriesBefore` printed: the host's time then, in ms, and the repositories kept; null when it said nothing. */
export function parseBefore(output: string): { since: number; kept: string[] } | null {
  const [first = "", ...rest] = output.split("\n");
  const seconds = Number(first);
  if (!/^\d+$/.test(first) || !Number.isSafeInteger(seconds)) return null;
  return { since: seconds * 1000, kept: rest.filter(Boolean) };
}

/**
 * Renames every `.git` and bare repository under the workspace (`node_modules` aside) that is not in `kept` and whose
 * parts came to be (stat's birth time, else its status change) since `since`, and prints a line for each.
 */
export function repositoriesAfter(workspace: string, before: { since: number; kept: readonly string[] }): string {
  const kept = before.kept.map((path) => `|${path}|`).join("");
  // The host's clock counts seconds here: the second before the start counts as since.
  const since = Math.floor(before.since / 1000) - 1;
  const loop = [
    `find "$W" -name node_modules -prune -o -name .git -print -prune -o -type f -name HEAD -print 2>/dev/null | while IFS= read -r g; do`,
    `case "$g" in */.git) r=$g; set -- "$g" "$g/config" "$g/HEAD" "$g/commondir" ;; */HEAD) r=\${g%/HEAD}; [ "$r" != "$W" ] && [ -d "$r/objects" ] && [ -d "$r/refs" ] || continue; set -- "$g" "$r/config" "$r/objects" "$r/refs" ;; *) continue ;; esac;`,
    `case "$K" in *"|$r|"*) continue ;; esac;`,
    `m=0; for f in "$@"; do b=$("$S" -c %W -- "$f" 2>/dev/null); case "$b" in ''|0|*[!0-9]*) b=$("$S" -c %Z -- "$f" 2>/dev/null) || continue ;; esac; [ "$b" -le "$m" ] || m=$b; done;`,
    `[ "$m" -ge ${since} ] || continue;`,
    `n="$g${UNTRUSTED_SUFFIX}"; i=2; while [ -e "$n" ] || [ -L "$n" ]; do n="$g${UNTRUSTED_SUFFIX}-$i"; i=$((i + 1)); done;`,
    `s=\${r#"$W"/}; x=\${g#"$W"/};`,
    `if mv -- "$g" "$n" 2>/dev/null; then printf '%s\\n' "spool: the git repository $s was made while this command ran; git runs what a repository's config and hooks name wherever the person runs git there, so $x was renamed \${n##*/}: rename it back once you have looked at its config and hooks (or if you made it yourself)";`,
    `else printf '%s\\n' "spool: the git repository $s was made while this command ran, and it could not be renamed: look at its config and hooks before you run git there"; fi;`,
    "done",
  ].join(" ");
  return [realWorkspace(workspace), `K=${shellQuote(kept)}`, "S=$(command -v stat) || exit 0", loop].join("; ");
}
