import { ROLE_SUMMARY, ROLES, type Role } from "../../protocol/roles.js";
import { adminSubcommand, printList } from "../admin-subcommand.js";
import { type Command, defineCommand, JSON_OPTION } from "../command-spec.js";
import { age } from "../common.js";
import { EXIT, usageError } from "../errors.js";

export const TOKEN_SPEC = defineCommand({
  name: "token",
  usage: `spool token create NAME --role ROLE [--project NAME]... [--expires DURATION]
       spool token list [--json] [--revoked]
       spool token revoke NAME`,
  about: `Manages credentials (admin only: the home's token file is the admin). Every
credential names a principal: what proposals, decisions and cancellations record
as who made them. create prints the new token as its only line on stdout; the
server keeps only its hash, so it is shown this once. revoke stops the token,
closes its open connections and withdraws its proposals that wait for a decision
(in every project): nobody can accept a command whose proposer is gone.

Roles, each able to do everything the ones before it can:
${ROLES.map((r) => `  ${r.padEnd(8)} ${ROLE_SUMMARY[r]}`).join("\n")}`,
  connects: true,
  options: {
    role: { type: "string", arg: "ROLE", help: "the principal's role (create; required)" },
    project: { type: "string", multiple: true, arg: "NAME", help: "a project it may join; repeat for more   [default: every project]" },
    expires: { type: "string", arg: "DURATION", help: "when the token stops working: 30m, 12h, 7d, 4w   [default: never]" },
    revoked: { type: "boolean", help: "list revoked principals too" },
    ...JSON_OPTION,
  },
});

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `7d` → milliseconds; anything else is a usage error. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,6})([smhdw])$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) throw usageError(`--expires takes a duration like 30m, 12h, 7d or 4w, not "${text}"`);
  return Number(match[1]) * UNITS[match[2]!]!;
}

export async function token(argv: string[]): Promise<number> {
  const started = adminSubcommand(TOKEN_SPEC, argv);
  if (typeof started === "number") return started;
  const { sub, values, positionals, only, request } = started;
  switch (sub) {
    case "create": {
      only(["NAME"]);
      const role = values.role;
      if (role === undefined) throw usageError(`spool token create needs --role (${ROLES.join(", ")})`);
      if (!(ROLES as readonly string[]).includes(role)) throw usageError(`--role is one of ${ROLES.join(", ")}, not "${role}"`);
      const expiresAt = values.expires !== undefined ? Date.now() + parseDuration(values.expires) : undefined;
      const created = await request((c) =>
        c.call("token/create", {
          name: positionals[0]!,
          role: role as Role,
          ...(values.project ? { projects: values.project } : {}),
          ...(expiresAt !== undefined ? { expiresAt } : {}),
        }),
      );
      process.stdout.write(`${created.token}\n`);
      const scope = created.principal.projects ? `projects ${created.principal.projects.join(", ")}` : "every project";
      const until = created.principal.expiresAt ? `, until ${new Date(created.principal.expiresAt).toISOString()}` : "";
      process.stderr.write(
        `created ${created.principal.name} (${created.principal.role}, ${scope}${until}); ${process.stdout.isTTY ? "the token above" : "its token, written to stdout,"} is not shown again\n`,
      );
      return EXIT.ok;
    }
    case "list": {
      only([]);
      const { principals } = await request((c) => c.call("token/list", { revoked: values.revoked ?? false }));
      return printList(
        principals,
        values.json,
        "no principals besides the home's token file (admin) — spool token create NAME --role ROLE makes one",
        ["name", "role", "projects", "created", "expires", ...(values.revoked ? ["revoked"] : [])],
        (p) => ({
          name: p.name,
          role: p.role,
          projects: p.projects ? p.projects.join(",") : "*",
          created: `${age(p.createdAt)} by ${p.createdBy}`,
          expires: p.expiresAt === null ? "never" : new Date(p.expiresAt).toISOString(),
          ...(values.revoked ? { revoked: p.revokedAt === null ? "" : age(p.revokedAt) } : {}),
        }),
      );
    }
    case "revoke": {
      only(["NAME"]);
      const { principal, closed, withdrawn, minted } = await request((c) => c.call("token/revoke", { name: positionals[0]! }));
      const did = [
        ...(minted?.length ? [`and ${minted.length} credential${minted.length === 1 ? "" : "s"} it minted: ${minted.join(", ")}`] : []),
        ...(closed ? [`closed ${closed} connection${closed === 1 ? "" : "s"}`] : []),
        ...(withdrawn ? [`withdrew ${withdrawn} waiting proposal${withdrawn === 1 ? "" : "s"}`] : []),
      ];
      process.stdout.write(`revoked ${principal.name}${did.length > 0 ? ` (${did.join(", ")})` : ""}\n`);
      return EXIT.ok;
    }
    default:
      throw usageError(`spool token: unknown subcommand "${sub}" (create, list or revoke)`);
  }
}

export const TOKEN: Command = { spec: TOKEN_SPEC, run: token };
