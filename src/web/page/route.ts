/** Where the page is: project, run and producer (a log path), kept in the address's fragment as #/project/run/path. */
export interface Route {
  project: string | null;
  run: string | null;
  producer: string | null;
}

export function readRoute(): Route {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { project: parts[0] || null, run: parts[1] || null, producer: parts[2] || null };
}

export function routeHash(route: Route): string {
  const parts = [route.project, route.run, route.producer].filter((p): p is string => Boolean(p));
  return `#/${parts.map(encodeURIComponent).join("/")}`;
}

/** Whether a fragment carries a sign-in code (#code=… from `spool open`). */
export const codeIn = (hash: string) => /^#(?:.*&)?code=/.test(hash);
