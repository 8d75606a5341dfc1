/**
 * The seccomp filter of the sandbox (SPEC §2, issue 45), defence in depth behind the read-only filesystem, the
 * read-only kernel settings and the dropped capabilities: system calls a sandboxed command has no use for, that act
 * on the kernel or the host rather than on the command's own namespaces, fail with EPERM whatever its rights.
 *
 * A classic BPF program (struct sock_filter, 8 bytes each, the host's byte order) that bubblewrap loads with
 * `--seccomp FD` after it built the sandbox. For x86-64 only, where it is tested: there, system calls of the i386 ABI
 * (`int 0x80`) are judged by their own numbers, and those of the x32 ABI are all refused. Elsewhere there is no filter,
 * and the runner's detail says so.
 */

/** The denied calls by name: their numbers on x86-64 and on its i386 ABI (none: the ABI does not have it). */
export const DENIED: Record<string, [x64: number | null, i386: number | null]> = {
  // Kernel modules, another kernel, the machine's power, swap, accounting and the kernel's log.
  init_module: [175, 128],
  finit_module: [313, 350],
  delete_module: [176, 129],
  kexec_load: [246, 283],
  kexec_file_load: [320, null],
  reboot: [169, 88],
  swapon: [167, 87],
  swapoff: [168, 115],
  acct: [163, 51],
  syslog: [103, 103],
  vhangup: [153, 111],
  // The machine's clock.
  settimeofday: [164, 79],
  stime: [null, 25],
  clock_settime: [227, 264],
  clock_settime64: [null, 404],
  clock_adjtime: [305, 343],
  clock_adjtime64: [null, 405],
  // Disk quotas, I/O ports, old or removed interfaces.
  quotactl: [179, 131],
  quotactl_fd: [443, 443],
  iopl: [172, 110],
  ioperm: [173, 101],
  uselib: [134, 86],
  lookup_dcookie: [212, 253],
  nfsservctl: [180, 169],
  vm86: [null, 166],
  vm86old: [null, 113],
  // Mounts, old and new interfaces alike: the sandbox's mounts are made before the filter is.
  mount: [165, 21],
  umount: [null, 22],
  umount2: [166, 52],
  pivot_root: [155, 217],
  open_tree: [428, 428],
  move_mount: [429, 429],
  fsopen: [430, 430],
  fsconfig: [431, 431],
  fsmount: [432, 432],
  fspick: [433, 433],
  mount_setattr: [442, 442],
  // The kernel's keyrings, which no namespace separates.
  add_key: [248, 286],
  request_key: [249, 287],
  keyctl: [250, 288],
  // Programs and tracing in the kernel, page faults handled in user space, files opened by handle (outside any mount).
  bpf: [321, 357],
  perf_event_open: [298, 336],
  userfaultfd: [323, 374],
  open_by_handle_at: [304, 342],
  // io_uring: its operations run in the kernel's workers, where no seccomp filter judges them (Docker refuses it too).
  io_uring_setup: [425, 425],
  io_uring_enter: [426, 426],
  io_uring_register: [427, 427],
};

/**
 * Calls whose mode argument may set the setuid or setgid bit, by the index of that argument (and for open and
 * openat, of their flags: the mode counts only with O_CREAT or O_TMPFILE, else it is whatever a register held).
 * A sandboxed command leaves no such file behind (issue 54): one made by a root runner's command is setuid root on
 * the host, whatever mount options the sandbox had, once someone runs it outside.
 */
export const MODE_CALLS: { name: string; numbers: [x64: number, i386: number]; mode: number; flags?: number }[] = [
  { name: "chmod", numbers: [90, 15], mode: 1 },
  { name: "fchmod", numbers: [91, 94], mode: 1 },
  { name: "fchmodat", numbers: [268, 306], mode: 2 },
  { name: "fchmodat2", numbers: [452, 452], mode: 2 },
  { name: "creat", numbers: [85, 8], mode: 1 },
  { name: "mknod", numbers: [133, 14], mode: 1 },
  { name: "mknodat", numbers: [259, 297], mode: 2 },
  { name: "open", numbers: [2, 5], mode: 2, flags: 1 },
  { name: "openat", numbers: [257, 295], mode: 3, flags: 2 },
];
/** openat2 takes its mode in a structure a filter cannot read: it answers ENOSYS, and programs fall back to openat. */
const OPENAT2: [x64: number, i386: number] = [437, 437];
/** socket(2) on each ABI, and i386's socketcall (whose arguments are in memory: its SYS_SOCKET is refused whole). */
const SOCKET: [x64: number, i386: number] = [41, 359];
const SOCKETCALL_I386 = 102;
const AF_UNIX = 1;
const SYS_SOCKET = 1;
const S_ISUID_ISGID = 0o6000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
/** O_CREAT, and O_TMPFILE's own bit (without O_DIRECTORY, which it includes). */
const CREATING = 0o100 | 0o20000000;
export const O_CREAT = 0o100;
export const O_TMPFILE_BIT = 0o20000000;

/** ioctl's number on each ABI; its requests that push input into a terminal or drive the console are denied. */
const IOCTL: [x64: number, i386: number] = [16, 54];
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const X32_SYSCALL_BIT = 0x40000000;

const LD_W_ABS = 0x20;
const JEQ = 0x15;
const JGE = 0x35;
const JSET = 0x45;
const RET = 0x06;
const ALLOW = 0x7fff0000;
const EPERM = 0x00050000 | 1;
const ENOSYS = 0x00050000 | 38;

/** Offsets in struct seccomp_data: the call's number, the ABI, the low 32 bits of argument N (little-endian). */
const NR = 0;
const ARCH = 4;
const argLow = (index: number) => 16 + 8 * index;
const ARG1_LOW = argLow(1);

type Insn = { code: number; k: number; jt?: string; jf?: string; label?: string };

/** The names of the calls the filter denies (for the docs and tests). */
export const SECCOMP_DENIED = Object.keys(DENIED);

/** The names of the calls refused when they would set the setuid or setgid bit. */
export const SECCOMP_MODE_CALLS = MODE_CALLS.map((call) => call.name);

export interface SeccompOptions {
  /**
   * Refuse creating Unix sockets (`socket(AF_UNIX, …)`; socketpair stays): a socket on a read-only mount still
   * accepts connections, so this is what keeps a command from every socket on the machine it can see (read-only).
   */
  refuseUnixSockets?: boolean;
}

/** The filter for the machine this process runs on (`arch`: Node's `process.arch`), or null where there is none. */
export function seccompProgram(arch: string = process.arch, options: SeccompOptions = {}): Buffer | null {
  if (arch !== "x64") return null;
  const program: Insn[] = [];
  const section = (abi: 0 | 1, next: string) => {
    const at = (label: string) => `${abi}:${label}`;
    program.push({ code: LD_W_ABS, k: NR });
    if (abi === 0) program.push({ code: JGE, k: X32_SYSCALL_BIT, jt: "deny", jf: "+0" });
    for (const numbers of Object.values(DENIED)) {
      const nr = numbers[abi];
      if (nr !== null) program.push({ code: JEQ, k: nr, jt: "deny", jf: "+0" });
    }
    for (const call of MODE_CALLS)
      program.push({ code: JEQ, k: call.numbers[abi], jt: at(call.flags === undefined ? `mode${call.mode}` : call.name), jf: "+0" });
    program.push({ code: JEQ, k: OPENAT2[abi], jt: "nosys", jf: "+0" });
    if (options.refuseUnixSockets) {
      program.push({ code: JEQ, k: SOCKET[abi], jt: at("socket"), jf: "+0" });
      if (abi === 1) program.push({ code: JEQ, k: SOCKETCALL_I386, jt: at("socketcall"), jf: "+0" });
    }
    program.push({ code: JEQ, k: IOCTL[abi], jt: "+0", jf: next });
    program.push({ code: LD_W_ABS, k: ARG1_LOW });
    program.push({ code: JEQ, k: TIOCSTI, jt: "deny", jf: "+0" });
    program.push({ code: JEQ, k: TIOCLINUX, jt: "deny", jf: next });
    if (options.refuseUnixSockets) {
      program.push({ label: at("socket"), code: LD_W_ABS, k: argLow(0) });
      program.push({ code: JEQ, k: AF_UNIX, jt: "deny", jf: next });
      if (abi === 1) {
        program.push({ label: at("socketcall"), code: LD_W_ABS, k: argLow(0) });
        program.push({ code: JEQ, k: SYS_SOCKET, jt: "deny", jf: next });
      }
    }
    // open and openat: their mode is judged only when they create (flags first), then as the other calls' is.
    for (const call of MODE_CALLS.filter((call) => call.flags !== undefined)) {
      program.push({ label: at(call.name), code: LD_W_ABS, k: argLow(call.flags ?? 0) });
      program.push({ code: JSET, k: CREATING, jt: at(`mode${call.mode}`), jf: next });
    }
    for (const index of [...new Set(MODE_CALLS.map((call) => call.mode))].sort()) {
      program.push({ label: at(`mode${index}`), code: LD_W_ABS, k: argLow(index) });
      program.push({ code: JSET, k: S_ISUID_ISGID, jt: "deny", jf: next });
    }
  };
  program.push({ code: LD_W_ABS, k: ARCH });
  program.push({ code: JEQ, k: AUDIT_ARCH_X86_64, jt: "+0", jf: "i386" });
  section(0, "allow");
  program.push({ label: "i386", code: LD_W_ABS, k: ARCH });
  // Any other ABI than these two is refused whole.
  program.push({ code: JEQ, k: AUDIT_ARCH_I386, jt: "+0", jf: "deny" });
  section(1, "allow");
  program.push({ label: "allow", code: RET, k: ALLOW });
  program.push({ label: "nosys", code: RET, k: ENOSYS });
  program.push({ label: "deny", code: RET, k: EPERM });
  return assemble(program);
}

/** Resolves the labels ("+0": the next instruction) into forward jump offsets and packs the instructions. */
function assemble(program: Insn[]): Buffer {
  const at = new Map(program.flatMap((insn, index) => (insn.label ? [[insn.label, index] as const] : [])));
  const buffer = Buffer.alloc(program.length * 8);
  program.forEach((insn, index) => {
    const offset = (label: string | undefined): number => {
      if (label === undefined || label === "+0") return 0;
      const target = at.get(label);
      if (target === undefined || target <= index || target - index - 1 > 255) throw new Error(`seccomp: no forward jump to ${label} from ${index}`);
      return target - index - 1;
    };
    const base = index * 8;
    buffer.writeUInt16LE(insn.code, base);
    buffer.writeUInt8(offset(insn.jt), base + 2);
    buffer.writeUInt8(offset(insn.jf), base + 3);
    buffer.writeUInt32LE(insn.k >>> 0, base + 4);
  });
  return buffer;
}

/** The file descriptor the launcher opens the filter on, for bwrap's `--seccomp`. */
export const SECCOMP_FD = 9;

/**
 * A shell line (one brace group) that opens `program` on SECCOMP_FD: written with printf's octal escapes (POSIX, NUL bytes too) into a
 * file of mktemp's, opened, removed at once. bubblewrap reads the descriptor and closes it before the command runs.
 * `dir`: a shell word naming a private directory the script made and removes itself (the network launcher's "$d"):
 * the file is written there, which saves starting mktemp and rm (~6 ms of CPU a launch).
 */
export function seccompPrelude(program: Buffer, dir?: string): string {
  const escaped = escapedOf(program);
  if (dir) return `{ printf '${escaped}' > ${dir}/seccomp || { rm -rf ${dir}; exit 125; }; exec ${SECCOMP_FD}<${dir}/seccomp; }`;
  return `{ s=$(mktemp) || exit 125; printf '${escaped}' > "$s" || { rm -f "$s"; exit 125; }; exec ${SECCOMP_FD}<"$s"; rm -f "$s"; }`;
}

/** printf's escapes of each filter, made once: the filters are few and kept (seccompFor), a launch is per command (~3 ms each). */
const escapes = new WeakMap<Buffer, string>();
function escapedOf(program: Buffer): string {
  let escaped = escapes.get(program);
  if (escaped === undefined) {
    escaped = [...program].map((byte) => `\\${byte.toString(8).padStart(3, "0")}`).join("");
    escapes.set(program, escaped);
  }
  return escaped;
}

const unixRefused = new Map<string, Buffer | null>();

/**
 * The filter a command of `mode` gets where the machine loads `probed` (the probe's filter, or null: none): read-only
 * commands also create no Unix socket (SPEC §7 "Sandbox modes": the sockets a command can see on a read-only mount
 * still accept connections); workspace-write ones may (test suites open their own), and Spool's sockets are hidden.
 */
export function seccompFor(mode: string, probed: Buffer | null, arch: string = process.arch): Buffer | null {
  if (!probed || mode !== "read-only") return probed;
  if (!unixRefused.has(arch)) unixRefused.set(arch, seccompProgram(arch, { refuseUnixSockets: true }));
  return unixRefused.get(arch) ?? null;
}
