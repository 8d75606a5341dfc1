/** A SOCKS5 greeting and CONNECT to `name` (its bytes as given, a NUL byte among them if there is one) on `port`. */
export function socksConnect(name: string, port: number): Buffer {
  const bytes = Buffer.from(name, "latin1");
  return Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, bytes.length]), bytes, Buffer.from([port >> 8, port & 0xff])]);
}

/** Bytes as a shell's `printf` format writes them: every byte an octal escape (busybox's printf and bash's alike). */
export const printfBytes = (bytes: Buffer): string => [...bytes].map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("");
