import { readFileSync } from "node:fs";

/** The WAL's frames in use and how many of them are in the database, from the wal-index (SQLite's -shm file). */
export function walFrames(store: { file: string }): { frames: number; copied: number } {
  const index = readFileSync(`${store.file}-shm`);
  // WalIndexHdr.mxFrame at byte 16, WalCkptInfo.nBackfill at byte 96; native byte order (little-endian here).
  return { frames: index.readUInt32LE(16), copied: index.readUInt32LE(96) };
}
