// The wire as both ends see it, published as `spool/protocol`: statuses and their words, typed views of
// runs, proposals, producers and channels, the proposal facts every client shows, sandbox modes. zod and
// plain TypeScript only, no Node imports: it runs in Node and bundles for the browser.

export * from "./nearest.js";
export * from "./proposal-facts.js";
export * from "./sandbox.js";
export * from "./status.js";
export * from "./version.js";
export * from "./views.js";
// The schemas under the types' names (a value and a type each, as zod's habit is).
export { Channel, Outcome, ProcessPlace, Producer, ProducerState, ProposalFacts, ProposalView, RunView, SandboxFact } from "./views-schemas.js";
