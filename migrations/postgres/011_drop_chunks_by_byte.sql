-- PostgreSQL twin of ../011_drop_chunks_by_byte.sql.
DROP INDEX IF EXISTS chunks_by_byte;
