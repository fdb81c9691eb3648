"""The numbers of strategy.pxd, for Python (fastlb/lb/algorithms.py)."""
