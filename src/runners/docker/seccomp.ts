import { DENIED, MODE_CALLS, O_CREAT, O_TMPFILE_BIT, S_ISGID, S_ISUID } from "../sandbox/seccomp.js";

/**
 * The seccomp profile of a read-only or workspace-write container (issue 54): the calls bubblewrap's filter refuses
 * (runners/sandbox/seccomp.ts), refused the same way by Docker's libseccomp, so a container's command, root of the host when the
 * engine remaps no user, leaves no setuid or setgid file in the project and has no io_uring. It replaces Docker's
 * default profile, so what that one refuses and a capability-less process could still call is refused here as well:
 * new namespaces (unshare, setns, clone with a namespace flag; clone3, whose flags are in memory, answers ENOSYS and
 * the C library falls back to clone).
 */

type Arg = { index: number; value: number; valueTwo: number; op: "SCMP_CMP_MASKED_EQ" };
type Rule = { names: string[]; action: "SCMP_ACT_ERRNO"; errnoRet: number; args?: Arg[] };

const EPERM = 1;
const ENOSYS = 38;
const AF_UNIX = 1;
/** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET. */
const CLONE_NAMESPACES = [0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];

const bit = (index: number, value: number): Arg => ({ index, value, valueTwo: value, op: "SCMP_CMP_MASKED_EQ" });
/**
 * An `int` (or `unsigned int`) argument equal to `value`. libseccomp compares all 64 bits of an argument and the kernel
 * reads only the low 32 of such one: with SCMP_CMP_EQ, `socket(0x100000001, …)` made an AF_UNIX socket past the rule
 * (libseccomp#383). Compared through the low word's mask, as bubblewrap's filter loads the low word (sandbox/seccomp.ts).
 */
const int = (index: number, value: number): Arg => ({ index, value: 0xffffffff, valueTwo: value, op: "SCMP_CMP_MASKED_EQ" });
const refuse = (names: string[], args?: Arg[], errnoRet = EPERM): Rule => ({ names, action: "SCMP_ACT_ERRNO", errnoRet, ...(args ? { args } : {}) });

/** The profile as the engine takes it (`SecurityOpt: ["seccomp=<this JSON>"]`); `refuseUnixSockets` for read-only, as bubblewrap's. */
export function dockerSeccompProfile(options: { refuseUnixSockets?: boolean } = {}): string {
  const rules: Rule[] = [refuse([...Object.keys(DENIED), "unshare", "setns"]), refuse(["openat2", "clone3"], undefined, ENOSYS)];
  for (const flag of CLONE_NAMESPACES) rules.push(refuse(["clone"], [bit(0, flag)]));
  for (const bitOfMode of [S_ISUID, S_ISGID]) {
    for (const call of MODE_CALLS) {
      if (call.flags === undefined) rules.push(refuse([call.name], [bit(call.mode, bitOfMode)]));
      else for (const creating of [O_CREAT, O_TMPFILE_BIT]) rules.push(refuse([call.name], [bit(call.flags, creating), bit(call.mode, bitOfMode)]));
    }
  }
  // Pushing input into a terminal, driving the console.
  for (const request of [0x5412, 0x541c]) rules.push(refuse(["ioctl"], [int(1, request)]));
  if (options.refuseUnixSockets) rules.push(refuse(["socket"], [int(0, AF_UNIX)]));
  return JSON.stringify({
    defaultAction: "SCMP_ACT_ALLOW",
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    syscalls: rules,
  });
}
