import NodeWebSocket from "ws";

/** A paired device as a browser holds it: the cookie's name and value, and the page's key. */
export interface PairedDevice {
  origin: string;
  cookie: string;
  key: string;
  id: string;
  name: string;
}

/**
 * fetch, once more when a kept-alive connection was reset before it was answered: the server closes an idle
 * connection that never authenticated (limits.authDeadlineMs; one whose request carried a credential, a code or a
 * device's session has), and one reused just then is reset, as a browser would see and retry. undici reports it as ECONNRESET, or as UND_ERR_SOCKET ("other side closed") when the close came
 * before its request was written.
 */
export async function fetchOnce(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code !== "ECONNRESET" && code !== "UND_ERR_SOCKET") throw error;
    return await fetch(url, init);
  }
}

/** Mints a sign-in code with a credential (what `spool open` does), optionally naming the device. */
export async function mintCode(port: number, token: string, name?: string): Promise<Response> {
  return await fetchOnce(`http://127.0.0.1:${port}/session/code`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, ...(name ? { "Content-Type": "application/json" } : {}) },
    ...(name ? { body: JSON.stringify({ name }) } : {}),
  });
}

/** Trades a code for a device as the page does (its own origin, JSON), with a browser's User-Agent. */
export async function redeem(port: number, code: string, userAgent = "Mozilla/5.0 (Linux; Android 14) Chrome/130.0 Mobile Safari/537.36"): Promise<Response> {
  const origin = `http://127.0.0.1:${port}`;
  return await fetchOnce(`${origin}/session`, {
    method: "POST",
    headers: { Origin: origin, "Content-Type": "application/json", "User-Agent": userAgent },
    body: JSON.stringify({ code }),
  });
}

/** Pairs a device with the credential; fails the test when it is refused. */
export async function pair(port: number, token: string, options: { name?: string; userAgent?: string } = {}): Promise<PairedDevice> {
  const minted = await mintCode(port, token, options.name);
  if (minted.status !== 201) throw new Error(`minting a code: HTTP ${minted.status} ${await minted.text()}`);
  const { code } = (await minted.json()) as { code: string };
  const response = await redeem(port, code, options.userAgent);
  if (response.status !== 200) throw new Error(`pairing: HTTP ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { key: string; device: { id: string; name: string } };
  const cookie = /^([^=]+=[^;]+)/.exec(response.headers.get("set-cookie") ?? "")![1]!;
  return { origin: `http://127.0.0.1:${port}`, cookie, key: body.key, ...body.device };
}

/**
 * The Cookie header the browser sends at `origin`: a cookie is named after the port the browser reached the server by,
 * so servers behind one address (a proxy, a load balancer) read the same cookie; reaching another server of the
 * database directly stands for that by naming the cookie after its port.
 */
const cookieAt = (device: PairedDevice, origin: string) => device.cookie.replace(/^spool_session_\d+=/, `spool_session_${new URL(origin).port}=`);

/** GET /session as the device's page asks it, at `origin` (another server sharing the database, or the same one). */
export async function sessionOf(device: PairedDevice, origin = device.origin): Promise<Response> {
  return await fetch(`${origin}/session`, { headers: { Cookie: cookieAt(device, origin), "Spool-Session-Key": device.key } });
}

/** A page connection of the device, open; `closed` resolves with its close code and reason. */
export async function pageSocket(
  device: PairedDevice,
  origin = device.origin,
): Promise<{ ws: NodeWebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new NodeWebSocket(origin.replace(/^http/, "ws"), ["spool", `spool.session.${device.key}`], {
    headers: { Cookie: cookieAt(device, origin), Origin: origin },
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) => reject(new Error(`refused: HTTP ${res.statusCode}`)));
    ws.once("error", reject);
  });
  return { ws, closed };
}
