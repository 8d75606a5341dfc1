import { z } from "zod";
import { request } from "../define.js";
import { PROJECT_NAME, PROJECT_NAME_RULE } from "../project-name.js";

export const ProjectSummary = z.object({
  name: z.string(),
  root: z.string(),
  createdAt: z.number().int(),
  runs: z.number().int().describe("Runs in the project"),
  open: z.number().int().describe("Runs that have not finished (queued, running, waiting, paused)"),
  waiting: z.number().int().describe("Runs with a proposal waiting for a decision (not those whose accepted command runs)"),
  paused: z.number().int().describe("Runs paused at their budget: they wait for a person to raise it or stop them"),
  updatedAt: z.number().int().nullable().describe("When a run of the project last changed; null without runs"),
});

export const projectList = request({
  name: "project/list",
  role: "viewer",
  description:
    "The server's projects by name, with their runs counted: those the caller's credential may join (every one, or its scope's). Works before `initialize`, so a client can choose one to join.",
  access: "none",
  params: z.strictObject({
    limit: z.number().int().min(1).max(1000).optional().describe("At most this many (default 200)"),
  }),
  result: z.object({ projects: z.array(ProjectSummary) }),
});

export const projectCreate = request({
  name: "project/create",
  role: "admin",
  description:
    "Creates a project rooted at `root` (an existing directory, absolute, apart from the Spool home), named `name` or after the root's directory. The only ways a project comes to be are this and `initialize` with a root: never at the server's own working directory. A name or root another project holds is CONFLICT; a scoped admin creates only a project it names in its scope, in a directory apart from other projects' (on, inside or above the root of a project outside its scope is FORBIDDEN, naming no project).",
  access: "none",
  params: z.strictObject({
    name: z.string().regex(PROJECT_NAME, PROJECT_NAME_RULE).optional().describe("The project's name; absent: from the root's directory name, made unique"),
    root: z.string().min(1).max(4096).describe("Absolute path of the project's root directory"),
  }),
  result: z.object({ project: z.object({ name: z.string(), root: z.string() }) }),
});

export const projectDelete = request({
  name: "project/delete",
  role: "admin",
  description:
    "Removes a project and everything stored of it (runs, entries, their output, rules, runner names); the audit trail keeps its rows. Refused (CONFLICT, nothing removed) while a run of it is open or a command of it waits or runs: abort them first. Connections joined to it are closed (on every server sharing the database). `runs` must say how many runs it holds (what `project/list` shows), so a removal confirms what it removes: another count is CONFLICT.",
  access: "none",
  params: z.strictObject({
    project: z.string().regex(PROJECT_NAME, PROJECT_NAME_RULE),
    runs: z.number().int().min(0).describe("How many runs the caller was shown it holds (project/list's `runs`): the confirmation"),
  }),
  result: z.object({
    project: z.object({ name: z.string(), root: z.string() }),
    runs: z.number().int().describe("Runs removed with it"),
    closed: z.number().int().describe("Connections joined to it that this server closed"),
  }),
});
