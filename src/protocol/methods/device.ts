import { z } from "zod";
import { request } from "../define.js";
import { RoleName } from "../role-schemas.js";

/** A paired device as `device/list` shows it: never its secrets, which the store keeps only as digests. */
export const DeviceView = z.object({
  id: z.string().describe("Its public id (what `spool devices revoke` takes, as well as its name)"),
  name: z.string().describe("Its name: from the browser that paired, or `spool open --name`"),
  principal: z.string().describe("The principal it acts as: the one whose credential made its sign-in code"),
  role: RoleName,
  createdAt: z.number().int(),
  createdAddress: z.string().nullable().describe("Its address when it paired"),
  lastSeenAt: z.number().int().describe("When it was last used (ms since the epoch)"),
  lastAddress: z.string().nullable().describe("Its address when last used"),
  expiresAt: z.number().int().describe("When it stops working unless used again: its idle end, never past its credential's expiry"),
});

export const deviceList = request({
  name: "device/list",
  description:
    "The paired devices (browsers signed in with a `spool open` link) still signed in: the caller's own principal's, or with `all` (admin only) every principal's its scope covers (a scoped admin: those of principals whose every project is one of its own); oldest first.",
  access: "none",
  role: "viewer",
  params: z.strictObject({ all: z.boolean().optional().describe("Every principal's devices its scope covers (admin only); default: the caller's own") }),
  result: z.object({ devices: z.array(DeviceView) }),
});

export const deviceRevoke = request({
  name: "device/revoke",
  description:
    "Unpairs a device by its id or name: it is signed out and its page connections close, on every server sharing the database. A caller unpairs its own principal's devices; an admin those of every principal its scope covers (a scoped admin never the home's, nor another project's: NOT_FOUND, as a device nobody has). A name two devices share is CONFLICT (give the id); one no device has is NOT_FOUND.",
  access: "none",
  role: "viewer",
  params: z.strictObject({ device: z.string().min(1).max(200).describe("The device's id or name") }),
  result: z.object({ device: DeviceView, closed: z.number().int().describe("Page connections of it this server closed") }),
});
