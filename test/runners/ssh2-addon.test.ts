import { cpSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cipherAddonPath, cipherAddonRefusal } from "../../src/runners/ssh/cipher-addon.js";
import { loadSsh2 } from "../../src/runners/ssh/ssh2.js";
import { tempDir } from "../helpers/server.js";

/*
 * ssh2's native ciphers, built against Node 24.19's headers or later, abort the process when a cipher object is
 * collected (src/runners/ssh/cipher-addon.ts): a vitest worker died so on Node 24 (CI, the twentieth session). On
 * Node 24 and later Spool never loads the addon, even where npm built it; on 20 and 22 it does, as ssh2 would.
 * Checked on a copy of ssh2 with a file at the addon's path: whether Node is asked to load it (process.dlopen).
 */

const here = createRequire(import.meta.url);

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
  const require = createRequire(join(dir, "index.js"));
  const addon = cipherAddonPath(require);
  mkdirSync(dirname(addon), { recursive: true });
  // Not an ELF object: loading it fails, but whether Node was asked to is what is checked.
  writeFileSync(addon, "not a shared object\n");
  return { require, addon };
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

  it("Node 20 and 22: loaded as ssh2 does (Node is asked for it)", () => {
    const copy = ssh2Copy();
    record();
    loadSsh2(copy.require, cipherAddonRefusal("22.23.3"));
    expect(cipherAddonRefusal("20.20.2")).toBeNull();
    expect(opened).toContain(copy.addon);
  });

  it("Node 24 and later: Node is never asked, ssh2 says it has no binding, and its ciphers are Node's own", () => {
    const copy = ssh2Copy();
    record();
    const refusal = cipherAddonRefusal("24.21.0");
    expect(refusal).toContain("nodejs/node#65446");
    expect(cipherAddonRefusal("25.1.0")).not.toBeNull();
    const ssh2 = loadSsh2(copy.require, refusal);
    expect(opened).not.toContain(copy.addon);
    expect(copy.require("ssh2/lib/protocol/crypto.js").bindingAvailable).toBe(false);
    // The ciphers ssh2 offers without it: AES-GCM among them, done by Node's crypto.
    const offered: string[] = copy.require("ssh2/lib/protocol/constants.js").DEFAULT_CIPHER;
    expect(offered.some((name) => name.startsWith("aes128-gcm"))).toBe(true);
    expect(typeof ssh2.Client).toBe("function");
    expect(typeof ssh2.utils.parseKey).toBe("function");
  });

  it("this Node's own rule: refused from 24 on", () => {
    expect(cipherAddonRefusal() === null).toBe(Number(process.versions.node.split(".")[0]) < 24);
  });
});
