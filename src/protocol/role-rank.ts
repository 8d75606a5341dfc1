/** The roles a credential may hold, least power first: each may do everything the ones before it may. No zod here: the page bundles it. */
export const ROLES = ["runner", "viewer", "agent", "person", "admin"] as const;

export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { runner: 0, viewer: 1, agent: 2, person: 3, admin: 4 };

/** Whether a holder of `held` may do what needs `needed`. */
export function roleAllows(held: Role, needed: Role): boolean {
  return RANK[held] >= RANK[needed];
}

/** The lesser of two roles (what a connection that asks for less than its credential holds acts with). */
export function lesserRole(a: Role, b: Role): Role {
  return RANK[a] <= RANK[b] ? a : b;
}
