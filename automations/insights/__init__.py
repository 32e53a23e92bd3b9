"""Read-side analytics: run insights (`queries`), scheduler health (`health`) and the admin's
server-side SVG pictures (`svg`). Nothing here writes runs; every figure comes from the rows the
runtime already writes (runs, step runs, scheduled jobs) plus the tick's own record."""
