import { type Command, type CommandSpec, completionWords, defineCommand, helpText, parseSpec, takesRun } from "../command-spec.js";
import { EXIT } from "../errors.js";

export const COMPLETION_SPEC = defineCommand({
  name: "completion",
  usage: "spool completion bash|zsh|fish",
  about: `Prints a tab-completion script for the shell: commands, each command's options, and
the names of the project's runs where a command takes RUN. Load it with
  bash:  source <(spool completion bash)          (or save it in ~/.bash_completion)
  zsh:   source <(spool completion zsh)           (after compinit, e.g. in ~/.zshrc)
  fish:  spool completion fish > ~/.config/fish/completions/spool.fish`,
  options: {},
});

/**
 * `spool completion SHELL`: the script, each command's options read from the table that parses them. The table is
 * main.ts's (given, not imported: main.ts loads this file).
 */
export function completionCommand(table: () => Promise<Record<string, CommandSpec>>): Command {
  return {
    spec: COMPLETION_SPEC,
    run: async (argv) => {
      const { values, positionals } = parseSpec(COMPLETION_SPEC, argv);
      if (values.help) return print(helpText(COMPLETION_SPEC));
      const [shell, extra] = positionals;
      if (extra !== undefined || !shell || !["bash", "zsh", "fish"].includes(shell)) {
        process.stderr.write(`spool completion: name one shell: bash, zsh or fish\n${helpText(COMPLETION_SPEC)}`);
        return EXIT.usage;
      }
      const commands: Record<string, Completed> = {};
      for (const [name, spec] of Object.entries(await table())) {
        const subcommands = Object.fromEntries(Object.entries(spec.subcommands ?? {}).map(([word, sub]) => [word, completionWords(sub)]));
        commands[name] = { options: completionWords(spec), takesRun: takesRun(spec), ...(spec.subcommands ? { subcommands } : {}) };
      }
      return print(completionScript(shell, commands)!);
    },
  };
}

function print(text: string): number {
  process.stdout.write(text);
  return EXIT.ok;
}

/** What completion offers after a command: its options (from the table that parses them), and runs when it takes RUN first. */
export interface Completed {
  options: string[];
  takesRun: boolean;
  /** Its subcommands (`spool mcp add`), each with its own options: offered as the command's first word. */
  subcommands?: Record<string, string[]>;
}

/** The script for `shell`, from the command table; null for a shell it does not know. */
export function completionScript(shell: string, commands: Record<string, Completed>): string | null {
  const takesRun = Object.keys(commands).filter((name) => commands[name]!.takesRun);
  // help and completion may already be in the table: each name once.
  const names = [...new Set([...Object.keys(commands), "help", "completion"])].join(" ");
  const runs = "spool runs --quiet 2>/dev/null";
  if (shell === "bash") {
    // help and completion complete words of their own (below): no case of the table may shadow theirs.
    // A command with subcommands offers them as its first word, and a subcommand's own options after it.
    const cases = Object.entries(commands)
      .filter(([name]) => name !== "help" && name !== "completion")
      .map(([name, c]) => {
        if (!c.subcommands) return `    ${name}) opts="${c.options.join(" ")}" ;;`;
        const subs = Object.entries(c.subcommands)
          .map(([word, options]) => `${word}) opts="${options.join(" ")}" ;;`)
          .join(" ");
        return `    ${name}) opts="${c.options.join(" ")}"; case "\${COMP_WORDS[2]}" in ${subs} esac
      if [ "$COMP_CWORD" -eq 2 ] && [[ "$cur" != -* ]]; then COMPREPLY=($(compgen -W "${Object.keys(c.subcommands).join(" ")}" -- "$cur")); return; fi ;;`;
      })
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
  case " ${takesRun.join(" ")} " in *" $cmd "*) [ "$COMP_CWORD" -eq 2 ] && COMPREPLY=($(compgen -W "$(${runs})" -- "$cur")) ;; esac
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
      `complete -c spool -n "__fish_seen_subcommand_from ${takesRun.join(" ")}" -a "(${runs})"`,
    ];
    for (const [name, c] of Object.entries(commands)) {
      const subs = Object.keys(c.subcommands ?? {});
      // With subcommands, the command's own options only before one is given.
      const own = subs.length
        ? `__fish_seen_subcommand_from ${name}; and not __fish_seen_subcommand_from ${subs.join(" ")}`
        : `__fish_seen_subcommand_from ${name}`;
      if (subs.length) lines.push(`complete -c spool -n "${own}" -a "${subs.join(" ")}"`);
      for (const option of c.options.filter((o) => o.startsWith("--"))) lines.push(`complete -c spool -n "${own}" -l ${option.slice(2)}`);
      for (const [word, options] of Object.entries(c.subcommands ?? {})) {
        for (const option of options.filter((o) => o.startsWith("--")))
          lines.push(`complete -c spool -n "__fish_seen_subcommand_from ${name}; and __fish_seen_subcommand_from ${word}" -l ${option.slice(2)}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }
  return null;
}
