"""Runtime: the typed model compiled into flat tables, shared counters, the worker process."""
