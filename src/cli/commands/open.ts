import { spawn } from "node:child_process";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import QRCode from "qrcode";
import { type ProvenConnection, provenConnection, ServerProofError } from "../../client/server-proof.js";
import { type Command, defineCommand, parseSpec, positionals, showHelp } from "../command-spec.js";
import { palette, readToken, serverTarget, workingDirectory } from "../common.js";
import { CliError, EXIT, usageError } from "../errors.js";
import { findProject } from "../project.js";

export const OPEN_SPEC = defineCommand({
  name: "open",
  usage: "spool open [--browser] [--qr] [options]",
  about: `Prints a link to the web view of the server that makes its code, at the
address that server serves on; the link signs one browser in. The code works
once, within a minute, and pairs the browser that opens it: a device of the
credential that made it (the token itself never reaches the browser), which
stays signed in across restarts until unused for 30 days, its credential
expires or is revoked, or it is unpaired (spool devices). Run in a project, the page opens on
that project. A runner's credential gets no link. --qr also draws the link as
a QR code, for a phone's camera: the phone must reach the server's address
(docs/web.md: "From your phone").`,
  connects: true,
  options: {
    browser: { type: "boolean", help: "also open the link in the default browser ($BROWSER, else\nxdg-open or open)" },
    qr: { type: "boolean", help: "also print the link as a QR code (after the link, on stdout)" },
    name: {
      type: "string",
      arg: "NAME",
      help: 'the name of the device the link pairs (spool devices)   [default: the\nbrowser\'s, such as "Chrome on Android"]',
    },
  },
});

/** `ws://host:port/` → `http://host:port/`: the web view is served on the WebSocket's port. */
export function pageUrl(serverUrl: string): URL {
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw usageError(`--server must be a URL like ws://127.0.0.1:7420/, got "${serverUrl}"`);
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") throw usageError(`--server must be a ws:// or wss:// URL, got "${serverUrl}"`);
  return new URL("/", `${url.protocol === "wss:" ? "https:" : "http:"}//${url.host}`);
}

export async function open(argv: string[]): Promise<number> {
  const { values, positionals: rest } = parseSpec(OPEN_SPEC, argv);
  if (values.help) return showHelp(OPEN_SPEC);
  positionals("open", rest, []);
  const target = await serverTarget(values);
  const base = pageUrl(target.tcpUrl);
  const token = readToken(target.tokenFile);
  const { code, page } = await mintCode(base, target.url, token, target.tokenFile, deviceName(values.name));
  const fragment = new URLSearchParams({ code });
  const project = findProject(workingDirectory(), values);
  if (project?.name) fragment.set("project", project.name);
  else if (project?.root) fragment.set("root", project.root);
  // The server the code is for: a page of another server that is given the link names it, and offers to go there.
  fragment.set("server", page.origin);
  const link = `${page.href}#${fragment}`;
  process.stdout.write(`${link}\n`);
  if (values.qr) {
    process.stdout.write(await qrBlock(link));
    if (isLoopback(page.hostname))
      process.stderr.write(
        `The link names ${page.host}, this machine: a phone reaches it only through a tunnel (ssh -L, a VPN). Serve on an address the phone reaches and pass it: spool open --qr --server ws://ADDRESS:PORT/\n`,
      );
  }
  if (!values.browser) {
    process.stderr.write("The link signs one browser in, once, within a minute (spool open --browser opens it here).\n");
    return EXIT.ok;
  }
  await openBrowser(link);
  return EXIT.ok;
}

/**
 * Asks the server for a one-time code with the token (POST /session/code): over the home's Unix socket when the
 * client uses it, else over TCP once the server has proved it holds the token (src/client/server-proof.ts). The
 * link goes to the page of the server that made the code, at the address it says it serves on (its real port,
 * whatever the configuration says); over TLS, where the server sits behind whatever terminates it, the address
 * the client reached it by.
 */
async function mintCode(base: URL, via: string, token: string, tokenFile: string, name: string | null): Promise<{ code: string; page: URL }> {
  const payload = name === null ? "" : JSON.stringify({ name });
  let connection: ProvenConnection | null = null;
  const unix = via.startsWith("ws+unix:") ? new URL(via).pathname.replace(/:\/?$/, "") : null;
  if (unix || base.protocol === "http:") {
    // Over the socket the server proves itself and the client answers its challenge: the token is not sent there.
    try {
      connection = await provenConnection(unix ? { path: unix } : { host: base.hostname.replace(/^\[|\]$/g, ""), port: Number(base.port || 80) }, token);
    } catch (error) {
      if (error instanceof ServerProofError && error.status === 401) throw wrongToken(base, tokenFile);
      if (error instanceof ServerProofError) throw new CliError(error.message, EXIT.connection);
      throw new CliError(`no server at ${unix ?? base.href} — start one with \`spool serve\` (or pass --server URL)`, EXIT.connection);
    }
  }
  let response: { status: number; body: string };
  try {
    response = await new Promise((resolve, reject) => {
      // Over TLS (wss://) the certificate proves the server, as for the WebSocket.
      const req = (base.protocol === "https:" && !unix ? httpsRequest : httpRequest)(
        {
          ...(unix ? { socketPath: unix } : { host: base.hostname.replace(/^\[|\]$/g, ""), port: Number(base.port || 80) }),
          ...(connection ? { createConnection: () => connection.socket.resume() } : {}),
          path: "/session/code",
          method: "POST",
          headers: {
            Authorization: connection?.authorization ?? `Bearer ${token}`,
            "Content-Length": String(Buffer.byteLength(payload)),
            ...(payload ? { "Content-Type": "application/json" } : {}),
          },
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.once("error", reject);
      req.end(payload);
    });
  } catch {
    throw new CliError(`no server at ${unix ?? base.href} — start one with \`spool serve\` (or pass --server URL)`, EXIT.connection);
  }
  const where = unix ? `the server at ${unix}` : base.href;
  if (response.status === 401) throw wrongToken(base, tokenFile);
  if (response.status === 404) throw new CliError(`${where} has no web view (an older Spool server?)`, EXIT.connection);
  // A credential the server will not sign a page in with (a runner's): its words say why.
  if (response.status === 403) throw new CliError(`${where} refused a sign-in link: ${errorIn(response.body)}`, EXIT.failed);
  if (response.status === 429 || response.status === 400) throw new CliError(`${where} refused a sign-in link: ${errorIn(response.body)}`, EXIT.failed);
  if (response.status < 200 || response.status >= 300) throw new CliError(`${where} refused to make a sign-in code (HTTP ${response.status})`, EXIT.connection);
  let body: { code?: unknown; url?: unknown };
  try {
    body = JSON.parse(response.body) as typeof body;
  } catch {
    throw new CliError(`${where} answered without a code`, EXIT.failed);
  }
  if (typeof body.code !== "string") throw new CliError(`${where} answered without a code`, EXIT.failed);
  if (base.protocol === "https:" && !unix) return { code: body.code, page: base };
  const page = typeof body.url === "string" && URL.canParse(body.url) ? new URL(body.url) : null;
  if (page?.protocol !== "http:") throw new CliError(`${where} did not say the address of its page (an older Spool server?)`, EXIT.failed);
  return { code: body.code, page };
}

/** --name as given: 1-64 characters. */
function deviceName(name: string | undefined): string | null {
  if (name === undefined) return null;
  if (name.trim() === "" || name.length > 64) throw usageError(`--name takes 1-64 characters, not "${name}"`);
  return name;
}

/** The server's words in an error answer (`{"error": "…"}`), else the body as it came (bounded). */
function errorIn(body: string): string {
  try {
    const error = (JSON.parse(body) as { error?: unknown }).error;
    if (typeof error === "string") return error;
  } catch {
    // not JSON: the body itself
  }
  return body.slice(0, 500);
}

const wrongToken = (base: URL, tokenFile: string) =>
  new CliError(`wrong token for ${base.href} — the server's token is in its home's token file ($SPOOL_HOME/token; used: ${tokenFile})`, EXIT.connection);

/**
 * The link as a QR code drawn with half blocks, two rows of modules a line: on a terminal in explicit black on
 * white (ANSI colours) so it scans on a dark terminal as on a light one, the quiet zone white too; to a pipe or a
 * file, or with NO_COLOR, the same blocks without a colour escape (dark modules on a light page).
 */
export async function qrBlock(link: string, colour = palette().on): Promise<string> {
  const drawn = colour
    ? await QRCode.toString(link, { type: "terminal", small: true, errorCorrectionLevel: "L" })
    : await QRCode.toString(link, { type: "utf8", errorCorrectionLevel: "L" });
  return drawn.endsWith("\n") ? drawn : `${drawn}\n`;
}

const isLoopback = (host: string) => host === "localhost" || /^127\./.test(host) || host === "[::1]";

/** Starts the person's browser on the link: $BROWSER, else the desktop's opener; none to start is said, not skipped. */
function openBrowser(link: string): Promise<void> {
  const browser = process.env.BROWSER?.trim();
  const desktop = process.platform === "darwin" || process.platform === "win32" || Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
  if (!browser && !desktop)
    return Promise.reject(
      new CliError(
        "--browser: no browser to start here (no $BROWSER, and no DISPLAY or WAYLAND_DISPLAY for xdg-open) — open the link above in a browser yourself, or use --qr for a phone",
        EXIT.failed,
      ),
    );
  const [command, ...args] = browser
    ? [browser, link]
    : process.platform === "darwin"
      ? ["open", link]
      : process.platform === "win32"
        ? ["cmd", "/c", "start", '""', link]
        : ["xdg-open", link];
  return new Promise((resolve, reject) => {
    const child = spawn(command!, args, { detached: true, stdio: "ignore" });
    child.once("error", (error) =>
      reject(new CliError(`could not start a browser with ${command} (${error.message}) — open the link above yourself, or set $BROWSER`, EXIT.failed)),
    );
    child.once("spawn", () => {
      child.unref();
      resolve();
    });
  });
}

export const OPEN: Command = { spec: OPEN_SPEC, run: open };
