"""Benchmarks: fastlb side by side with HAProxy and nginx (see bench/run.py)."""
