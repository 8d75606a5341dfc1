import { type PrincipalRef, type Role, roleAllows } from "../protocol/roles.js";
import { SpoolError } from "../rpc/errors.js";

/*
 * A credential's scope, held in every check (not at initialize alone). A scoped admin is an admin *of its
 * projects*: it creates credentials only within them and at most its role, lists and revokes only principals
 * whose every project is one of its own, reads the trail of its projects (and its own acts), and adds, lists,
 * tests and removes only receivers of its projects. A thing of every project (an unscoped credential, a
 * receiver of every project) is an unscoped admin's alone. A refusal names no project the caller did not name.
 */

/** Whether `caller` may see or manage a thing of these projects (null: every project). */
export function covers(caller: Pick<PrincipalRef, "projects">, projects: readonly string[] | null): boolean {
  if (caller.projects === null) return true;
  if (projects === null) return false;
  const mine = caller.projects;
  return projects.every((p) => mine.includes(p));
}

/**
 * Refuses (FORBIDDEN) a thing of `projects` a scoped caller does not cover, naming only the projects the caller
 * itself named and its own: what it asked for, `what` in words ("a credential", "a receiver").
 */
export function requireCovered(caller: PrincipalRef, method: string, what: string, projects: readonly string[] | null): void {
  if (covers(caller, projects)) return;
  const own = caller.projects!.join(", ");
  const message =
    projects === null
      ? `${method}: "${caller.name}" is an admin of ${own} only; ${what} of every project needs an unscoped admin: name projects among ${own}`
      : `${method}: "${caller.name}" is an admin of ${own} only; ${projects.filter((p) => !caller.projects!.includes(p)).join(", ")} is outside its scope`;
  throw new SpoolError("FORBIDDEN", message, { method, held: caller.role, scope: caller.projects, ...(projects === null ? {} : { projects }) });
}

/** Refuses a role above the caller's: a credential gives at most the power of the one that made it. */
export function requireRoleAtMost(caller: PrincipalRef, method: string, role: Role): void {
  if (roleAllows(caller.role, role)) return;
  throw new SpoolError("FORBIDDEN", `${method}: "${caller.name}" acts as ${caller.role} and may not give the ${role} role`, {
    method,
    role,
    held: caller.role,
  });
}
