/**
 * The script a backend hands to `/bin/sh -c` for a command (SPEC §7 Runners, "The command's shell").
 *
 * A non-interactive shell that waits for a program is in the program's process group: a ^C typed into the
 * terminal, or a `stream/signal INT` sent to the group, reaches it too. A program that handles the signal (a
 * REPL printing KeyboardInterrupt) goes on, but a shell such as dash dies of it, and the command is reported as
 * ended by SIGINT although the program later exits 0. So when the command ends in one simple command that runs a
 * program, the shell `exec`s that program instead of waiting for it: no shell is left to be a separate victim.
 *
 * The rewrite is done only where it cannot change what the command does: a list of simple commands joined by
 * `;`, newlines, `&&` or `||`, made of plain words, quoted strings without expansions, and redirections; none of
 * them a shell keyword, `trap`, `.`, `source`, `eval` or `exec` (the shell could have an EXIT trap left to run), nor
 * a `set -x` or `-v` (the shell would trace what is added).
 * The last one, LAST, whose first word is NAME, becomes (on one line)
 *
 *     if [the shell finds NAME as a path to a regular, executable file (`command -v`, `[ -f ]`, `[ -x ]`)]
 *     then exec LAST; else LAST; fi
 *
 * so it is exec'd only when the shell would start a program file for it anyway: a builtin, a name
 * it cannot find or a file it cannot run stays the shell's to run and report as before. Anything else (a
 * pipeline, `&`, a loop, `$…`) is run as it was written.
 */

/** Words that begin compound commands (or are reserved) in POSIX shells, bash, ksh and zsh. */
const RESERVED = new Set([
  "if",
  "then",
  "else",
  "elif",
  "fi",
  "do",
  "done",
  "case",
  "esac",
  "while",
  "until",
  "for",
  "in",
  "function",
  "select",
  "time",
  "coproc",
  "repeat",
  "foreach",
  "end",
  "!",
  "{",
  "}",
  "[[",
  "]]",
]);

/** Builtins that may leave the shell work for its exit (a trap), or run code in it that could. */
const SHELL_CODE = new Set(["trap", ".", "source", "eval", "exec"]);

/** Characters of an unquoted word that mean themselves; anything else (`$`, `` ` ``, `\`, parentheses, braces, `#`, `!`, non-ASCII) stops the rewrite. */
const PLAIN = /[A-Za-z0-9_@%+=:,./~^*?[\]-]/;
/** Glob characters: not in the program's name, whose expansion `command -v` would see apart. */
const GLOB = /[*?[\]]/;
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

type Token = { kind: "word" | "redirect"; start: number; end: number; text: string } | { kind: "sep"; start: number; end: number; text: string };

/** The command's tokens, or null when it holds anything but plain words, quotes, redirections and list separators. */
function tokenize(command: string): Token[] | null {
  const tokens: Token[] = [];
  let i = 0;
  /** Reads one word from `i`; null when it holds something the rewrite does not take. */
  const word = (): string | null => {
    const start = i;
    while (i < command.length) {
      const c = command[i]!;
      if (c === "'") {
        const close = command.indexOf("'", i + 1);
        if (close === -1) return null;
        i = close + 1;
      } else if (c === '"') {
        const close = command.indexOf('"', i + 1);
        if (close === -1 || /[$`\\]/.test(command.slice(i + 1, close))) return null;
        i = close + 1;
      } else if (PLAIN.test(c)) i++;
      else break;
    }
    return i > start ? command.slice(start, i) : null;
  };
  const redirect = (start: number): boolean => {
    // The operator: < > >> >| <> >& <&; a here-document (<<) is not taken.
    if (command.startsWith("<<", i)) return false;
    i += /^(?:>>|>\||<>|>&|<&)/.test(command.slice(i, i + 2)) ? 2 : 1;
    while (command[i] === " " || command[i] === "\t") i++;
    if (word() === null) return false;
    tokens.push({ kind: "redirect", start, end: i, text: command.slice(start, i) });
    return true;
  };
  while (i < command.length) {
    const c = command[i]!;
    const start = i;
    if (c === " " || c === "\t") i++;
    else if (c === "\n" || c === ";") {
      if (command.startsWith(";;", i)) return null;
      i++;
      tokens.push({ kind: "sep", start, end: i, text: c });
    } else if (command.startsWith("&&", i) || command.startsWith("||", i)) {
      i += 2;
      tokens.push({ kind: "sep", start, end: i, text: command.slice(start, i) });
    } else if (c === "<" || c === ">") {
      if (!redirect(start)) return null;
    } else {
      const text = word();
      if (text === null) return null;
      // An IO number (2>file) belongs to its redirection.
      if (/^\d+$/.test(text) && (command[i] === "<" || command[i] === ">")) {
        if (!redirect(start)) return null;
      } else tokens.push({ kind: "word", start, end: i, text });
    }
  }
  return tokens;
}

/** The script for `/bin/sh -c`: the command, with its last simple command exec'd where that changes nothing else (see above). */
export function shellScript(command: string): string {
  const tokens = tokenize(command);
  if (!tokens) return command;
  // Simple commands between separators; empty ones are blank lines or a trailing `;`.
  const commands: Token[][] = [[]];
  const separators: string[] = [];
  for (const token of tokens) {
    if (token.kind === "sep") {
      commands.push([]);
      separators.push(token.text);
    } else commands.at(-1)!.push(token);
  }
  for (const [index, simple] of commands.entries()) {
    const first = simple[0];
    if (!first) {
      // Nothing before a `;`, `&&` or `||` is a syntax error the shell reports: left to it. Blank lines are fine.
      if (index < separators.length && separators[index] !== "\n") return command;
      continue;
    }
    if (first.kind !== "word" || RESERVED.has(first.text) || SHELL_CODE.has(first.text)) return command;
    // Under set -x or -v the shell would print the added test to stderr.
    if (first.text === "set" && simple.some((token, i) => i > 0 && /^(?:[-+][A-Za-z]*[xv]|xtrace|verbose)$/.test(token.text))) return command;
  }
  let last = commands.length - 1;
  while (last >= 0 && commands[last]!.length === 0) last--;
  if (last < 0) return command;
  // A trailing && or || (even across newlines) leaves the list unfinished.
  if (separators.slice(last).some((sep) => sep === "&&" || sep === "||")) return command;
  const simple = commands[last]!;
  const name = simple[0]!.text;
  if (ASSIGNMENT.test(name) || GLOB.test(name)) return command;
  const start = simple[0]!.start;
  const end = simple.at(-1)!.end;
  const text = command.slice(start, end);
  const found = `"$(command -v -- ${name})"`;
  const program = `case $(command -v -- ${name}) in */*) [ -f ${found} ] && [ -x ${found} ] ;; *) false ;; esac`;
  return `${command.slice(0, start)}if ${program}; then exec ${text}; else ${text}; fi${command.slice(end)}`;
}
