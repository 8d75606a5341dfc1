// Moved to test/helpers/browser.ts (issue 41: one browser harness); kept so a test written against the old path still finds it.
export * from "../helpers/browser.js";
