-- Turns are a counter on the run (runs.turn) and a column of every entry and
-- message; the table was never written. Dropped rather than kept empty.
DROP TABLE turns;
