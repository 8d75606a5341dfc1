export const COMPLETION_HELP = `Usage: spool completion bash|zsh|fish

Prints a tab-completion script for the shell: commands, each command's options, and
the names of the project's runs where a command takes RUN. Load it with
  bash:  source <(spool completion bash)          (or save it in ~/.bash_completion)
  zsh:   source <(spool completion zsh)           (after compinit, e.g. in ~/.zshrc)
  fish:  spool completion fish > ~/.config/fish/completions/spool.fish
`;

/** Commands whose first argument is a run (completed from `spool runs --quiet`). */
const TAKES_RUN = ["tail", "cancel", "approve", "reject", "entries", "show", "abort", "attach", "input"];

/**
 * The options a command takes, as its help's option lines define them (`  -f, --follow  …`, `  --lines N  …`):
 * an option only named in a sentence (`spool serve --demo-model`) is another command's.
 */
export function optionsOf(help: string): string[] {
  const found = new Set<string>();
  for (const line of help.split("\n")) {
    const m = /^ {2,}((?:-[a-zA-Z], )?--[a-z][a-z-]*|-[a-zA-Z])(?=[ ,=]|$)/.exec(line);
    if (!m) continue;
    for (const option of m[1]!.split(", ")) found.add(option);
  }
  return [...found].sort();
}

export function completionScript(shell: string, commands: Record<string, string[]>): string | null {
  // help and completion may already be in the table: each name once.
  const names = [...new Set([...Object.keys(commands), "help", "completion"])].join(" ");
  const runs = "spool runs --quiet 2>/dev/null";
  if (shell === "bash") {
    // help and completion complete words of their own (below): no case of the table may shadow theirs.
    const cases = Object.entries(commands)
      .filter(([name]) => name !== "help" && name !== "completion")
      .map(([name, options]) => `    ${name}) opts="${options.join(" ")}" ;;`)
      .join("\n");
    return `# spool completion for bash: source <(spool completion bash)
_spool() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd=\${COMP_WORDS[1]} opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=($(compgen -W "${names}" -- "$cur")); return; fi
  case "$cmd" in
${cases}
    help) COMPREPLY=($(compgen -W "${names}" -- "$cur")); return ;;
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); return; fi
  case " ${TAKES_RUN.join(" ")} " in *" $cmd "*) [ "$COMP_CWORD" -eq 2 ] && COMPREPLY=($(compgen -W "$(${runs})" -- "$cur")) ;; esac
}
complete -o default -F _spool spool
`;
  }
  if (shell === "zsh") {
    return `#compdef spool
# spool completion for zsh: source <(spool completion zsh)
autoload -U +X bashcompinit && bashcompinit
${completionScript("bash", commands)!.replace(/^# spool completion for bash.*\n/, "")}`;
  }
  if (shell === "fish") {
    const lines = [
      "# spool completion for fish: spool completion fish > ~/.config/fish/completions/spool.fish",
      "complete -c spool -f",
      `complete -c spool -n __fish_use_subcommand -a "${names}"`,
      `complete -c spool -n "__fish_seen_subcommand_from help" -a "${names}"`,
      `complete -c spool -n "__fish_seen_subcommand_from completion" -a "bash zsh fish"`,
      `complete -c spool -n "__fish_seen_subcommand_from ${TAKES_RUN.join(" ")}" -a "(${runs})"`,
    ];
    for (const [name, options] of Object.entries(commands)) {
      for (const option of options.filter((o) => o.startsWith("--"))) {
        lines.push(`complete -c spool -n "__fish_seen_subcommand_from ${name}" -l ${option.slice(2)}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }
  return null;
}
