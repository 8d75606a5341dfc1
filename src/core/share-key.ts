import type { PrincipalRow } from "../store/schema.js";

/*
 * Whose bounds a credential counts against (SPEC: Limits, "Per principal"): its share, the token id of the principal
 * the home minted at the top of its minting (migration 024), so what a principal's minted credentials hold counts
 * as its own.
 */

/** The share of the home's token file (no token id is spelled so): it keeps a reserve above every server-wide bound. */
export const HOME_SHARE = "home";

/** A principal's share (its own token id for a row from before migration 024). */
export const shareOf = (row: PrincipalRow): string => row.share ?? row.token_id;
