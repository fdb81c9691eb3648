# Entry points for tests and benchmarks only.
# Included by core.pxd; implemented in probes.pxi.


