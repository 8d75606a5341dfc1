import { resolve } from "node:path";
import { SpoolRpcError } from "../../client/spool-client.js";
import { adminSubcommand, printList } from "../admin-subcommand.js";
import { type Command, defineCommand, JSON_OPTION } from "../command-spec.js";
import { age, escapeControl, workingDirectory } from "../common.js";
import { CliError, EXIT, unknownName, usageError } from "../errors.js";
import { confirmKey } from "../typed-input.js";

export const PROJECTS_SPEC = defineCommand({
  name: "projects",
  usage: `spool projects [list] [--json]
       spool projects add DIR [--name NAME]
       spool projects rm NAME [--yes]`,
  about: `Lists the server's projects (those this credential may join), each with its
root and runs. add makes a project rooted at DIR (an existing directory; the
name defaults to DIR's own) — as the first \`spool act\` in a directory does.
A project is only ever made with the root its caller names: a mistyped
--project is "not found", never a new project. rm removes a project and
everything stored of it (runs, commands, their output); the audit trail keeps
its rows. It asks first, showing what goes; --yes answers for a script. It is
refused while a run of the project is open or a command waits or runs (abort
them first), and closes the connections joined to it. add and rm need the
admin role (a scoped admin: a project of its scope).`,
  connects: true,
  options: {
    name: { type: "string", arg: "NAME", help: "add: the project's name (default: from DIR)" },
    yes: { type: "boolean", short: "y", help: "rm: remove without asking" },
    ...JSON_OPTION,
  },
});

export async function projects(argv: string[]): Promise<number> {
  const started = adminSubcommand(PROJECTS_SPEC, argv[0] === undefined || (argv[0].startsWith("--") && argv[0] !== "--help") ? ["list", ...argv] : argv);
  if (typeof started === "number") return started;
  const { sub, values, positionals, only, request } = started;
  switch (sub) {
    case "list": {
      only([]);
      const { projects } = await request((c) => c.call("project/list", { limit: 1000 }));
      return printList(
        projects,
        values.json,
        "no projects yet — `spool act` (or `spool projects add DIR`) in a project's directory makes one",
        ["name", "root", "runs", "open", "waiting", "changed"],
        (p) => ({ name: p.name, root: p.root, runs: p.runs, open: p.open, waiting: p.waiting, changed: p.updatedAt === null ? "" : age(p.updatedAt) }),
      );
    }
    case "add": {
      only(["DIR"]);
      const root = resolve(workingDirectory(), positionals[0]!);
      const { project } = await request((c) => c.call("project/create", { root, ...(values.name !== undefined ? { name: values.name } : {}) }));
      process.stdout.write(`made project ${escapeControl(project.name)} rooted at ${escapeControl(project.root)}\n`);
      return EXIT.ok;
    }
    case "rm": {
      only(["NAME"]);
      const name = positionals[0]!;
      return request(async (c) => {
        const known = (await c.call("project/list", { limit: 1000 })).projects;
        const project = known.find((p) => p.name === name);
        if (!project)
          throw unknownName(
            "project",
            name,
            known.map((p) => p.name),
            { owner: "the server" },
          );
        const what = `project ${escapeControl(project.name)} (root ${escapeControl(project.root)}; ${project.runs} run${project.runs === 1 ? "" : "s"} and everything stored of them)`;
        if (!values.yes) {
          if (!process.stdin.isTTY) throw usageError(`spool projects rm asks before it removes ${what}: at a terminal, or with --yes`);
          if (!(await confirmKey(`Remove ${what}? [y/N] `)))
            throw new CliError(`not removed; \`spool projects rm ${escapeControl(name)} --yes\` removes it`, EXIT.failed);
        }
        try {
          const removed = await c.call("project/delete", { project: name, runs: project.runs });
          process.stdout.write(
            `removed project ${escapeControl(removed.project.name)} with ${removed.runs} run${removed.runs === 1 ? "" : "s"}${removed.closed ? `; closed ${removed.closed} connection${removed.closed === 1 ? "" : "s"} to it` : ""}\n`,
          );
          return EXIT.ok;
        } catch (error) {
          if (error instanceof SpoolRpcError && error.errorCode === "CONFLICT") throw new CliError(error.message, EXIT.failed);
          throw error;
        }
      });
    }
    default:
      throw usageError(`spool projects: unknown subcommand "${sub}" (list, add or rm)`);
  }
}

export const PROJECTS: Command = { spec: PROJECTS_SPEC, run: projects };
