"""fastlb: a HAProxy-compatible load balancer with a compiled hot path."""
__version__ = "0.1.0"
