"""Counters: the workers' shared counters summed into rows, and their text outputs (show
stat, show info, show servers state, show errors)."""
