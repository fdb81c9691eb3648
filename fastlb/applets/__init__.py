"""Applets: answers a worker gives itself instead of a server's, from the shared counters
(the stats page, the Prometheus exporter)."""
