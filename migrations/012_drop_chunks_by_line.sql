-- The chunk holding a line is found by a search over seq (from where even
-- chunks would put it, galloping, then halving) on the
-- (entry_id, seq) key (a chunk's line_offset never decreases with its seq;
-- src/store/chunk-reads.ts), so this index is no longer read on SQLite, yet
-- every append wrote one of its leaves per channel and group commit: about a
-- third of the WAL a 512-byte chunk cost (bench/README.md, "Issue 24, the
-- server's CPU per line").
DROP INDEX IF EXISTS chunks_by_line;
