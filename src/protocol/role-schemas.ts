import { z } from "zod";
import { ROLES } from "./role-rank.js";

/** The schemas of roles.ts's names (apart, so that a client reading only the names loads no zod). */
export const RoleName = z.enum(ROLES);

/** Who a connection acts as: a principal's name, its role and its scope (null: every project). */
export const PrincipalRef = z.object({
  name: z.string(),
  role: RoleName,
  projects: z.array(z.string()).nullable().describe("The projects it may join; null: every project"),
});
export type PrincipalRef = z.infer<typeof PrincipalRef>;

/** A principal's name: what proposals, decisions and cancellations record as who. */
export const PrincipalName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/i, "a principal's name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
