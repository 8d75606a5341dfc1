import { createRequire } from "node:module";
import { cipherAddonPath, cipherAddonRefusal } from "./cipher-addon.js";

/*
 * ssh2, loaded without its native ciphers addon on the Nodes that must not load it (cipher-addon.ts). Its path is put
 * in require's cache first, as a module whose exports throw, so ssh2's own `try { require(addon) } catch {}` goes on
 * without it, even in a tree where npm built it.
 */

/** What Spool uses of ssh2, loaded through `from` (a `require` of where ssh2 is found; tests give a copy's). */
export function loadSsh2(from: NodeJS.Require = createRequire(import.meta.url), refusal = cipherAddonRefusal()): typeof import("ssh2") {
  if (refusal === null) return from("ssh2") as typeof import("ssh2");
  const addon = cipherAddonPath(from);
  if (!from.cache[addon]) {
    const stand = { id: addon, filename: addon, loaded: true, children: [], paths: [] } as unknown as NodeJS.Module;
    Object.defineProperty(stand, "exports", {
      get() {
        throw new Error(`${addon}: ${refusal}`);
      },
    });
    from.cache[addon] = stand;
  }
  return from("ssh2") as typeof import("ssh2");
}

const ssh2 = loadSsh2();
export const { Client, OpenSSHAgent, utils } = ssh2;
/** An ssh2 client connection (the type of what `new Client()` makes). */
export type Client = import("ssh2").Client;
export type { AgentAuthMethod, ClientChannel, ConnectConfig, IdentityCallback, OpenSSHAgent as SshAgent, ParsedKey, PublicKeyAuthMethod } from "ssh2";
