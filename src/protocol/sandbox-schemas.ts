import { z } from "zod";
import { NETWORK_FACTS, NETWORK_KINDS, SANDBOX_MODES } from "./sandbox.js";

/** The schemas of sandbox.ts's names (apart, so that a client reading only the names loads no zod). */
export const SandboxModeName = z.enum(SANDBOX_MODES);
export type SandboxModeName = z.output<typeof SandboxModeName>;

export const NetworkKind = z.enum(NETWORK_KINDS);
export type NetworkKind = z.output<typeof NetworkKind>;

export const NetworkFact = z.enum(NETWORK_FACTS);
export type NetworkFact = z.output<typeof NetworkFact>;
