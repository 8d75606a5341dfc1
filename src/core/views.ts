/*
 * What features and the agent get from the store, through core (src/docs/layers.ts: they call core, never the
 * store): the row types core hands them, the typed reading of a producer's rows, and the row → wire views they return.
 */
export { cutLines, type LineReadOptions, memoryLineReads, OffsetPastLine } from "../store/chunk-reads.js";
export { channelFromRow, producerFromRow } from "../store/producer-row.js";
export { lineCount } from "../store/repositories.js";
export type { EntryRow, LoopRow, RunRow } from "../store/schema.js";
export { channelWire, countLines, entrySummary, producerWire, sliceLines } from "../store/views.js";
