/** What the server tells the client's model about itself, in either revision (initialize, server/discover). */
export const INSTRUCTIONS =
  "Spool runs your shell commands after a person approves them (web view, spool approve, an editor). run_command waits for the decision and for the command; use background: true for servers and watchers, then read_output, send_input, signal and cancel by path.";

/** The instructions, with which Spool server it is a client of (stdio: the home's) when that is said. */
export const instructions = (where: string | undefined) => (where ? `${INSTRUCTIONS} ${where}` : INSTRUCTIONS);
