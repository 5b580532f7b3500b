"""The database: engine and threads, tables, the repository and its typed writes, stats counters, the event log."""
