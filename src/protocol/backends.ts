/**
 * The runner backends, one row each: where a runner runs the commands it is given. The wire's `backend`
 * (`runner/attach`, `runner/list`), the server's registry of attached runners, the `spool_runners` series and
 * `spool runner --backend` all read the names from here. Each backend's code is the folder of src/runners/ of its
 * name, and its row of src/runners/backends.ts says how `spool runner` builds it from its flags.
 */
export const BACKENDS = {
  local: { about: "this machine: a process per command, in a bubblewrap sandbox where there is one" },
  docker: { about: "a Docker engine: a fresh container per command, or an exec in a running container" },
  ssh: { about: "another machine over SSH: a process per command, in a bubblewrap sandbox there" },
} as const satisfies Record<string, { about: string }>;

export type BackendName = keyof typeof BACKENDS;

/** The backends' names, in the table's order. */
export const BACKEND_NAMES = Object.keys(BACKENDS) as [BackendName, ...BackendName[]];

/** "local, docker or ssh": the names as a sentence lists them. */
export const backendNamesWords = (): string => `${BACKEND_NAMES.slice(0, -1).join(", ")} or ${BACKEND_NAMES.at(-1)}`;
