import { UNTRUSTED_SUFFIX } from "../new-repos.js";
import { REMOTE_GIT_LINES, REMOTE_GIT_SEARCH, REMOTE_IS_GIT_DIR } from "../sandbox/workspace.js";
import { shellQuote } from "../streams.js";

/*
 * The SSH runner's look for the git repositories a workspace-write command could write (runners/new-repos.ts), in two
 * shells of the remote host beside the command's: one before it starts (the host's clock, and the git directories the
 * sandbox binds read-only, found by the same search as streams.ts's script), one after its channel closed (its
 * sandbox gone with it), which makes every other git directory and `.git` file unknown to git and prints a line for each.
 */

/** The real path of `workspace` on the host in "$W", or an end with nothing said. */
const realWorkspace = (workspace: string) => `W=$(cd -P -- ${shellQuote(workspace)} 2>/dev/null && pwd) || exit 0`;

/** Prints the host's time (seconds) on the first line, then each git directory and `.git` the sandbox binds read-only. */
export function repositoriesBefore(workspace: string): string {
  // Each with what it is (device:inode) before its path: it is kept only while it still is that.
  const ids = `while IFS= read -r g; do i=$(stat -c %d:%i -- "$g" 2>/dev/null) && printf '%s %s\\n' "$i" "$g"; done`;
  return [realWorkspace(workspace), "date +%s", `${REMOTE_GIT_SEARCH} | ${ids}`].join("; ");
}

/** What `repositoriesBefore` printed: the host's time then (ms), what was kept, whether that is all; null when it said nothing. */
export function parseBefore(output: string): { since: number; kept: string[]; complete: boolean } | null {
  const [first = "", ...rest] = output.split("\n");
  const seconds = Number(first);
  if (!/^\d+$/.test(first) || !Number.isSafeInteger(seconds)) return null;
  const kept = rest.filter(Boolean);
  return { since: seconds * 1000, kept, complete: kept.length < REMOTE_GIT_LINES };
}

/** Each path `find` gives it ("$@": names with any character), judged and renamed as new-repos.ts does, a line said for each. */
const JUDGE = [
  REMOTE_IS_GIT_DIR,
  // Inside what was read-only to the command and still what it was (K: "device:inode path" a line; a path holding a
  // newline is never one of them). The root too: one that was a git directory refused the command.
  `kept() { case "$1" in *"$N"*) return 1 ;; esac; o=$IFS; IFS=$N; set -f; for l in $K; do k=\${l#* }; case "$1/" in "$k"/*) [ "$("$S" -c %d:%i -- "$k" 2>/dev/null)" = "\${l%% *}" ] && { IFS=$o; set +f; return 0; } ;; esac; done; IFS=$o; set +f; return 1; }`,
  `for g; do case "$g" in "$W"/*) ;; *) continue ;; esac`,
  `case "$g" in */.git) r=$g; what=".git file" ;; */HEAD) r=\${g%/HEAD}; isgit "$r" || continue; what="git directory" ;; *) continue ;; esac`,
  `if kept "$r"; then continue; fi`,
  // Past the search's reach at the start, only what was made since (birth time, else the last status change).
  `if [ "$C" != 1 ]; then b=$("$S" -c %W -- "$g" 2>/dev/null); case "$b" in ''|0|*[!0-9]*) b=$("$S" -c %Z -- "$g" 2>/dev/null) ;; esac; [ "\${b:-0}" -ge "$T" ] 2>/dev/null || continue; fi`,
  `n="$g${UNTRUSTED_SUFFIX}"; i=2; while [ -e "$n" ] || [ -L "$n" ]; do n="$g${UNTRUSTED_SUFFIX}-$i"; i=$((i + 1)); done`,
  `s=\${r#"$W"/}; x=\${g#"$W"/}`,
  `if mv -- "$g" "$n" 2>/dev/null; then printf '%s\\n' "spool: $s is a $what this command could write; git runs what a repository's config and hooks name wherever the person runs git there, so $x was renamed \${n##*/}: read its config and hooks (with cat, not in a shell whose prompt runs git) before you rename it back"`,
  `else printf '%s\\n' "spool: $s is a $what this command could write, and it could not be renamed: read its config and hooks before you run git there"; fi`,
  "done",
].join("; ");

/**
 * Makes every git directory (its HEAD renamed) and `.git` file (renamed) under the workspace that was not read-only to
 * the command unknown to git, and prints a line for each; where the search at the start was not complete, only those
 * made since it (`node_modules` aside).
 */
export function repositoriesAfter(workspace: string, before: { since: number; kept: readonly string[]; complete: boolean }): string {
  // The host's clock counts seconds: the second before the start counts as since.
  const since = Math.floor(before.since / 1000) - 1;
  // A git directory's objects hold no HEAD: not read (a clone's are thousands of files).
  const find = `find "$W" -mindepth 1 -name node_modules -prune -o -name objects -path "*/.git/objects" -prune -o -name .git ! -type d -exec sh -c "$J" sh {} + -o ! -type d -name HEAD -exec sh -c "$J" sh {} + 2>/dev/null`;
  return [
    realWorkspace(workspace),
    `N=$(printf '\\n_'); N=\${N%_}`,
    `K=${shellQuote(before.kept.join("\n"))}`,
    `C=${before.complete ? 1 : 0}`,
    `T=${since}`,
    "S=$(command -v stat) || S=stat",
    `J=${shellQuote(JUDGE)}`,
    "export W N K C T S",
    find,
    before.complete
      ? ""
      : `printf '%s\\n' "spool: the project holds more than ${REMOTE_GIT_LINES} git directories, so the repositories made past them were found by their birth time alone: look for any before you run git in the project"`,
  ]
    .filter(Boolean)
    .join("; ");
}
