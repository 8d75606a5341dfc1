/** Project names: what they may hold, and a safe one derived from any directory name (declared in the protocol, which clients share). */

export { nameCandidates, PROJECT_NAME, PROJECT_NAME_RULE, projectNameFrom } from "../protocol/project-name.js";
