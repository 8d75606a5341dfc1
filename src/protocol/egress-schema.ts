import { z } from "zod";
import { isIpv4, isIpv6, MAX_EGRESS_RULES, parseEgressRule } from "./egress.js";

/** One list entry, checked. */
export const EgressEntry = z
  .string()
  .max(300)
  .superRefine((entry, ctx) => {
    const parsed = parseEgressRule(entry);
    if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
  });

/** A list of entries as config.json and proposals give it. */
export const EgressList = z.array(EgressEntry).max(MAX_EGRESS_RULES);

/**
 * config.json `egress`: `allow`, every project's list; `projects`, a project's own list by its name (it replaces
 * `allow`); `hosts`, names the embedded runner's egress proxy resolves to these addresses before asking DNS. Without a
 * list, workspace-write commands keep the network sandboxNetwork says, unless a proposal asks for hosts.
 */
export const EgressConfig = z.strictObject({
  allow: EgressList.optional(),
  projects: z.record(z.string(), EgressList).optional(),
  hosts: z
    .record(
      z.string(),
      z.string().refine((a) => isIpv4(a) || isIpv6(a), "an IP address"),
    )
    .optional(),
});
