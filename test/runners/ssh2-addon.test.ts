import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadSsh2 } from "../../src/runners/ssh/ssh2.js";
import { tempDir } from "../helpers/server.js";

/*
 * ssh2's optional native ciphers, built against Node 24.19's headers or later, abort the process when a cipher object
 * is collected (src/runners/ssh/ssh2.ts): a vitest worker died so on Node 24 (CI, the twentieth session). Spool does
 * not build the addon, and where a tree has one it is never loaded. Checked on a copy of ssh2 with a file at the
 * addon's path: ssh2 as it is asks Node to load it (process.dlopen); through loadSsh2, Node is never asked.
 */

const here = createRequire(import.meta.url);
const ADDON = join("lib", "protocol", "crypto", "build", "Release", "sshcrypto.node");

/** A copy of ssh2 in a directory of its own, with a file where its addon is built; its dependencies linked. */
function ssh2Copy(): { require: NodeJS.Require; addon: string } {
  const dir = tempDir("spool-ssh2-copy-");
  const modules = join(dir, "node_modules");
  const real = dirname(here.resolve("ssh2/package.json"));
  cpSync(real, join(modules, "ssh2"), { recursive: true, filter: (path) => !path.includes(`${join("crypto", "build")}`) });
  for (const dependency of ["asn1", "bcrypt-pbkdf", "cpu-features"]) {
    let path: string;
    try {
      path = dirname(here.resolve(`${dependency}/package.json`));
    } catch {
      continue; // cpu-features is optional
    }
    symlinkSync(path, join(modules, dependency));
  }
  const addon = join(modules, "ssh2", ADDON);
  mkdirSync(dirname(addon), { recursive: true });
  // Not an ELF object: loading it fails, but whether Node was asked to is what is checked.
  writeFileSync(addon, "not a shared object\n");
  return { require: createRequire(join(dir, "index.js")), addon };
}

describe("ssh2's native ciphers are never loaded", () => {
  const dlopen = process.dlopen;
  const opened: string[] = [];
  const record = () => {
    process.dlopen = ((module: { exports: unknown }, filename: string, flags?: number) => {
      opened.push(filename);
      return dlopen.call(process, module, filename, flags);
    }) as typeof process.dlopen;
  };
  afterEach(() => {
    process.dlopen = dlopen;
    opened.length = 0;
  });

  it("ssh2 itself asks Node to load the addon where one is (the test can fail)", () => {
    const copy = ssh2Copy();
    record();
    copy.require("ssh2");
    expect(opened).toContain(copy.addon);
  });

  it("through loadSsh2 Node is never asked, ssh2 says it has no binding, and its ciphers are Node's own", () => {
    const copy = ssh2Copy();
    record();
    const ssh2 = loadSsh2(copy.require);
    expect(opened).not.toContain(copy.addon);
    expect(copy.require("ssh2/lib/protocol/crypto.js").bindingAvailable).toBe(false);
    // The ciphers ssh2 offers: AES-GCM first (this machine's CPU has AES instructions, or chacha20 leads without them).
    const offered: string[] = copy.require("ssh2/lib/protocol/constants.js").DEFAULT_CIPHER;
    expect(offered.length).toBeGreaterThan(3);
    expect(offered.some((name) => name.startsWith("aes128-gcm"))).toBe(true);
    expect(typeof ssh2.Client).toBe("function");
    expect(typeof ssh2.utils.parseKey).toBe("function");
  });

  it("npm does not build it: package.json lets ssh2's install script not run", () => {
    const manifest = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8"));
    expect(manifest.allowScripts.ssh2).toBe(false);
  });
});
