/** Where the page is: project, run and producer (a log path), kept in the address's fragment as #/project/run/path. */
export interface Route {
  project: string | null;
  run: string | null;
  producer: string | null;
}

/** The route the address names; an address that is no route (a malformed escape such as `#/%E0%A4%A`) names none. */
export function readRoute(): Route {
  const parts = routeParts(location.hash);
  if (parts === null) return { project: null, run: null, producer: null };
  return { project: parts[0] || null, run: parts[1] || null, producer: parts[2] || null };
}

/** Whether the fragment cannot be read as a route (the page says so instead of failing). */
export const malformedHash = (hash: string) => !codeIn(hash) && routeParts(hash) === null;

function routeParts(hash: string): string[] | null {
  try {
    return hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  } catch {
    return null;
  }
}

export function routeHash(route: Route): string {
  const parts = [route.project, route.run, route.producer].filter((p): p is string => Boolean(p));
  return `#/${parts.map(encodeURIComponent).join("/")}`;
}

/** Whether a fragment carries a sign-in code (#code=… from `spool open`). */
export const codeIn = (hash: string) => /^#(?:.*&)?code=/.test(hash);
