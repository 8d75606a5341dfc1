import { dirname, join } from "node:path";

/*
 * ssh2's optional native ciphers (lib/protocol/crypto/build/Release/sshcrypto.node), and the Nodes that must not load
 * them. Built against Node 24.19's headers or later, the addon aborts the process when the garbage collector frees one
 * of its cipher objects: `Assertion failed: (env) != nullptr` in node::RemoveEnvironmentCleanupHook, from the
 * header-only node::ObjectWrap that gained cleanup hooks in 24.19 (nodejs/node#65446, mscdex/ssh2#1511). A vitest
 * worker died so on Node 24 in CI; a runner or a server using SSH would too. An addon that Node 24 loads was built for
 * its ABI, so with 24's headers: on Node 24 and later Spool never loads it, and ssh2 uses Node's own crypto for the
 * same ciphers (about half the MB/s per connection: bench/history, twenty-first session). Node 20's and 22's headers
 * have no such hook (checked: 20.20 and 22.23), so there it is loaded as ssh2 does.
 */

/** Where ssh2 (found through `from`) has its native ciphers built: the file ssh2 itself tries to load. */
export function cipherAddonPath(from: NodeJS.Require): string {
  return join(dirname(from.resolve("ssh2/package.json")), "lib", "protocol", "crypto", "build", "Release", "sshcrypto.node");
}

/** Why this Node does not load ssh2's native ciphers, or null when it does. */
export function cipherAddonRefusal(version: string = process.versions.node): string | null {
  const major = Number(version.split(".")[0]);
  if (major < 24) return null;
  return `not loaded on Node ${version}: built for it, ssh2's ciphers addon aborts the process when a cipher is garbage-collected (nodejs/node#65446); the SSH runner uses Node's own ciphers`;
}
