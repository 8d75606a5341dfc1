import type { Role } from "./role-rank.js";

/*
 * Who may accept a command that runs without a sandbox (sandbox mode `full`: the machine, as the runner's user), the
 * same on the server that enforces it and on every client that shows it (SPEC §7 Runners, "Who may accept full").
 * config.json's `sandboxFullAcceptors` lists them; a proposal in `full` records the list it was proposed under, and
 * every client shows it with the sandbox mode. Plain TypeScript with no Node imports: the web page bundles it.
 */

/** The setting, as config.json and a refusal's `data.rule` name it. */
export const FULL_ACCEPTORS_RULE = "sandboxFullAcceptors";

/** The default: unscoped admins (the home's token is one). */
export const DEFAULT_FULL_ACCEPTORS: readonly string[] = ["admin"];

/**
 * An entry of the list: `admin` (every unscoped admin), `person` (every unscoped person, and so every unscoped admin),
 * or `principal:NAME` (that principal, while it is unscoped and may decide). An empty list: nobody, `full` never runs.
 */
export const FULL_ACCEPTOR_ENTRY = /^(admin|person|principal:[a-z0-9][a-z0-9._-]{0,63})$/i;

/** Who accepts: a principal's name, role and scope (null: every project). */
interface Acceptor {
  name: string;
  role: Role;
  projects: readonly string[] | null;
}

/**
 * Whether `who` may accept a `full` command under `acceptors`. A scoped credential never may, whatever the list says
 * (its scope is a few projects; `full` is the whole machine, every project's files and the server's own among them);
 * nor may a role that cannot decide at all.
 */
export function mayAcceptFull(who: Acceptor, acceptors: readonly string[]): boolean {
  if (who.projects !== null) return false;
  if (who.role !== "admin" && who.role !== "person") return false;
  return acceptors.some((entry) => {
    const lower = entry.toLowerCase();
    if (lower === "admin") return who.role === "admin";
    if (lower === "person") return true;
    return entry.slice("principal:".length) === who.name;
  });
}

/** `an unscoped admin`, `an unscoped person or admin, or alice`, `nobody here`: who the list lets accept, in words. */
export function fullAcceptorsText(acceptors: readonly string[], shown: (text: string) => string = (t) => t): string {
  const roles = acceptors.map((e) => e.toLowerCase());
  const kinds = roles.includes("person") ? ["an unscoped person or admin"] : roles.includes("admin") ? ["an unscoped admin"] : [];
  const named = acceptors.filter((e) => e.toLowerCase().startsWith("principal:")).map((e) => `${shown(e.slice("principal:".length))} (unscoped)`);
  const all = [...kinds, ...named];
  if (all.length === 0) return "nobody here";
  if (all.length === 1) return all[0]!;
  return `${all.slice(0, -1).join(", ")} or ${all.at(-1)}`;
}

/** What a refused accept's error carries beside its catalogue code (FORBIDDEN): the rule, who may, who tried. */
export interface FullRefusalData {
  rule: typeof FULL_ACCEPTORS_RULE;
  acceptors: string[];
  /** The role of the credential that tried. */
  held: Role;
  /** Its scope (null: every project). */
  scope: readonly string[] | null;
}

/** A refusal's words and data: who tried, the rule, who may; nothing ran, and the proposal still waits. */
export function fullRefusal(who: Acceptor, acceptors: readonly string[]): { message: string; data: FullRefusalData } {
  const held = who.projects === null ? `${who.role}` : `${who.role} scoped to ${who.projects.join(", ")}`;
  const message =
    `"${who.name}" (${held}) may not accept this command: it runs without a sandbox (sandbox full, the runner's whole machine), ` +
    `which ${FULL_ACCEPTORS_RULE} in the server's config.json lets ${fullAcceptorsText(acceptors)} accept` +
    `${who.projects === null ? "" : ", and never a scoped credential"}. Nothing ran; the proposal still waits for one who may (or reject it)`;
  return { message, data: { rule: FULL_ACCEPTORS_RULE, acceptors: [...acceptors], held: who.role, scope: who.projects } };
}
