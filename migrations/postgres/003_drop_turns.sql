-- PostgreSQL twin of ../003_drop_turns.sql.
DROP TABLE turns;
