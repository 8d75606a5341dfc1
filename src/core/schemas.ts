// Moved to src/protocol/common.ts (the wire's own module); re-exported while callers move.
export * from "../protocol/common.js";
