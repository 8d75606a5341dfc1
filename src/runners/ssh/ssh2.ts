import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/*
 * ssh2, without its optional native ciphers (lib/protocol/crypto/build/Release/sshcrypto.node). That addon, built
 * against Node 24.19's headers or later, aborts the process when the garbage collector frees one of its cipher
 * objects (`Assertion failed: (env) != nullptr` in node::RemoveEnvironmentCleanupHook, from the header-only
 * node::ObjectWrap: nodejs/node#65446, mscdex/ssh2#1511): a vitest worker died so on Node 24, and so would a runner or
 * a server using SSH. Without it ssh2 uses Node's own crypto (OpenSSL) for the same ciphers: AES-GCM first on a
 * machine with AES instructions, as with the addon. Spool does not build it (package.json allowScripts); a tree
 * where something else built it still never loads it: its path is in require's cache, as a module whose exports
 * throw, before ssh2 asks for it, so ssh2's own `try { require(addon) } catch {}` takes the path without it.
 */

/** What Spool uses of ssh2, loaded through `from` (a `require` of where ssh2 is found; tests give a copy's). */
export function loadSsh2(from: NodeJS.Require = createRequire(import.meta.url)): typeof import("ssh2") {
  const addon = join(dirname(from.resolve("ssh2/package.json")), "lib", "protocol", "crypto", "build", "Release", "sshcrypto.node");
  if (!from.cache[addon]) {
    const stand = { id: addon, filename: addon, loaded: true, children: [], paths: [] } as unknown as NodeJS.Module;
    Object.defineProperty(stand, "exports", {
      get() {
        throw new Error(`${addon}: ssh2's native ciphers are not loaded by Spool (they abort Node 24 at garbage collection)`);
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
