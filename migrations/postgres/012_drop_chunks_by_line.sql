-- PostgreSQL twin of ../012_drop_chunks_by_line.sql: PostgreSQL keeps chunks_by_line. Its reads go through Kysely,
-- a round trip each, so the start of a line is found there with the index's one lookup, not a search of
-- ~log2(chunks) queries.
SELECT 1;
