// The wire as both ends see it, published as `spool/protocol`: statuses and their words, typed views of
// runs, proposals, producers and channels, the proposal facts every client shows, sandbox modes. zod and
// plain TypeScript only, no Node imports: it runs in Node and bundles for the browser.

// Every request and notification as a descriptor (name, description, params, result or direction), the
// shapes they share, the error catalogue and the runner messages.
export { BACKEND_NAMES, BACKENDS, backendNamesWords } from "./backends.js";
export * from "./binary-frame.js";
export * from "./common.js";
export * from "./define.js";
export * from "./errors.js";
export * from "./methods/audit.js";
export * from "./methods/entry.js";
export * from "./methods/index.js";
export * from "./methods/model.js";
export * from "./methods/notify.js";
export * from "./methods/project.js";
export * from "./methods/proposal.js";
export * from "./methods/rpc.js";
export * from "./methods/run.js";
export * from "./methods/runner.js";
export * from "./methods/session.js";
export * from "./methods/stream.js";
export * from "./methods/token.js";
export * from "./nearest.js";
export * from "./notifications.js";
export * from "./notify-body.js";
export * from "./paths.js";
export * from "./project-name.js";
export * from "./proposal-facts.js";
// The schemas of roles.ts and sandbox.ts, kept apart from their names (so a client that needs only the names loads no zod).
export { PrincipalName, PrincipalRef, RoleName } from "./role-schemas.js";
export * from "./roles.js";
export * from "./runner.js";
export * from "./sandbox.js";
export { NetworkFact, NetworkKind, SandboxModeName } from "./sandbox-schemas.js";
export * from "./status.js";
export * from "./version.js";
export * from "./views.js";
// The schemas under the types' names (a value and a type each, as zod's habit is).
export { Channel, Outcome, ProcessPlace, Producer, ProducerState, ProposalFacts, ProposalView, RunView, SandboxFact } from "./views-schemas.js";
