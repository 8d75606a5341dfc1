// Moved to src/protocol/runner.ts (the wire's own module); re-exported while callers move.
export * from "../protocol/runner.js";
