import { closeSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";

/** fdinfo's flag for a descriptor closed at exec (O_CLOEXEC, octal). */
const CLOSE_ON_EXEC = 0o2000000;

/**
 * Closes the descriptors this process inherited beyond stdin, stdout and stderr (SPEC §7 "Sandbox modes"): a
 * descriptor not marked close-on-exec passes to every process started from here, so a command, sandboxed or not,
 * would hold what the process that started Spool left open (a pipe to it, a file it writes: seen from a shell that
 * kept fd 251). Node marks what it inherited close-on-exec only from 0 up to the first closed descriptor past 15
 * (libuv's `uv_disable_stdio_inheritance`): one past a gap stayed open to every command. Node's own descriptors
 * are all close-on-exec and stay, and so does its IPC channel to a parent.
 * Called first by the commands that run commands (`spool serve`, `spool runner`); says which it closed. Where /proc
 * does not say (not Linux), nothing is closed.
 * Not closed either: a descriptor on a file OpenSSL reads as Node starts (OPENSSL_CONF, NODE_EXTRA_CA_CERTS,
 * SSL_CERT_FILE, what is under /etc/ssl or /usr/lib/ssl). Node 22 reads NODE_EXTRA_CA_CERTS on a thread of its own
 * while this runs, through a descriptor that is not close-on-exec: closing it cost the server its extra certificates
 * ("load failed: bad end line"), and the number, reused, closed by OpenSSL after, took another file from under Node
 * (`spool serve: EBADF: bad file descriptor, close`; test/cli/doctor-native, two CI runs). Such a file is public
 * and open read-only (one open for writing is closed): a command that held it would hold nothing of Spool's.
 * Nor a file V8 writes for this process under a profiling flag (`--perf-basic-prof`'s /tmp/perf-PID.map, `--perf-prof`'s
 * jit-PID.dump, `--prof`'s …-PID-v8.log): V8 opens it without close-on-exec and keeps writing to the number, so once
 * closed, the next file opened there (the database) took V8's lines and `spool serve` stopped with "file is not a
 * database". Only under those flags, and a command then holds the write end of that profile alone.
 */
export function letGoOfInherited(): number[] {
  let names: string[];
  try {
    names = readdirSync("/proc/self/fd");
  } catch {
    return [];
  }
  const channel = Number(process.env.NODE_CHANNEL_FD ?? -1);
  const closed: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (fd <= 2 || fd === channel) continue;
    let flags: number;
    try {
      const match = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
      if (!match) continue;
      flags = Number.parseInt(match[1]!, 8);
    } catch {
      continue; // the listing's own descriptor, gone by now
    }
    if (flags & CLOSE_ON_EXEC) continue;
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      target = "";
    }
    // Read-only (O_ACCMODE 0): a written one is no OpenSSL read, and a command must not get it.
    if ((flags & 3) === 0 && openSslReads(target)) continue;
    if (v8Writes(target)) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // closed meanwhile
    }
  }
  return closed;
}

/** Whether `target` (a descriptor's file) is one V8 writes for this process under a profiling flag (see letGoOfInherited). */
function v8Writes(target: string): boolean {
  const name = target.slice(target.lastIndexOf("/") + 1);
  const pid = process.pid;
  return name === `perf-${pid}.map` || name === `jit-${pid}.dump` || name.endsWith(`-${pid}-v8.log`);
}

/** Whether `target` (a descriptor's file, "" if unknown) is one OpenSSL reads as Node starts (see letGoOfInherited). */
function openSslReads(target: string): boolean {
  if (!target) return false;
  if (target.startsWith("/etc/ssl/") || target.startsWith("/usr/lib/ssl/")) return true;
  return [process.env.OPENSSL_CONF, process.env.NODE_EXTRA_CA_CERTS, process.env.SSL_CERT_FILE].some((file) => {
    if (!file) return false;
    try {
      return realpathSync(file) === target;
    } catch {
      return false;
    }
  });
}
