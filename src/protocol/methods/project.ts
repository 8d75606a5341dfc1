import { z } from "zod";
import { request } from "../define.js";

export const ProjectSummary = z.object({
  name: z.string(),
  root: z.string(),
  createdAt: z.number().int(),
  runs: z.number().int().describe("Runs in the project"),
  open: z.number().int().describe("Runs that have not finished (queued, running, waiting)"),
  waiting: z.number().int().describe("Runs with a proposal waiting for a decision (not those whose accepted command runs)"),
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
