import { lstatSync, type Stats } from "node:fs";
import { dirname } from "node:path";

/*
 * Before a client sends its token over a Unix socket (the home's `spool.sock`), it checks that the socket is its own
 * user's (SPEC §2, issue 45): another user who could write in the home could have put a link, or a socket of its own,
 * in its place, and a credential sent there is theirs. Node cannot ask a connected socket who is at the other end
 * (SO_PEERCRED), so the file is judged instead, and the directory holding it, which nobody else may change.
 */

const lstatOrNull = (path: string): Stats | null => {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
};

/**
 * Why the token must not go to the socket at `path`, or null when it may: a symbolic link, no socket, a socket of
 * another user, or one in a directory another user owns or may write in (a sticky one, like /tmp, keeps names to
 * their owners). A socket that is not there is left to the connection's own error. Unchecked without user ids.
 */
export function foreignSocket(path: string): string | null {
  const me = process.getuid?.();
  if (me === undefined) return null;
  const stat = lstatOrNull(path);
  if (!stat) return null;
  if (stat.isSymbolicLink()) return `${path} is a symbolic link, not the server's socket`;
  if (!stat.isSocket()) return `${path} is not a socket`;
  if (stat.uid !== me) return `the socket ${path} belongs to uid ${stat.uid}, not to this user (uid ${me})`;
  const dir = dirname(path);
  const parent = lstatOrNull(dir);
  if (parent && parent.uid !== me && parent.uid !== 0)
    return `the directory ${dir} holding the socket belongs to uid ${parent.uid}, not to this user (uid ${me})`;
  if (parent && (parent.mode & 0o022) !== 0 && (parent.mode & 0o1000) === 0) return `the directory ${dir} holding the socket is writable by other users`;
  return null;
}

/** The message of a refusal to send the token to a socket that is not this user's. */
export const foreignSocketMessage = (why: string) =>
  `Refusing to send the token: ${why}. Another user may have put it there to take the credential. Check the Spool home (ls -la), stop whatever made it, and start \`spool serve\` as yourself; the token was not sent`;
