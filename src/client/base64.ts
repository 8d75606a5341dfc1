/** Base64 as bytes: Node's Buffer where there is one, else atob (this client also runs in a browser). */
export function fromBase64(text: string): Uint8Array {
  if (typeof Buffer !== "undefined") return Buffer.from(text, "base64");
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Bytes as base64 without Node's Buffer (this client also runs in a browser). */
export function base64(bytes: Uint8Array): string {
  let text = "";
  // In slices: String.fromCharCode takes its characters as arguments, and arguments are limited.
  for (let at = 0; at < bytes.length; at += 0x8000) text += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  return btoa(text);
}
