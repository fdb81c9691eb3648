"""fastlb: a HAProxy-compatible load balancer with a compiled hot path."""
__version__ = "0.1.0"
# The HAProxy version whose configuration manual fastlb follows: what "-v" names and what
# the version_atleast()/version_before() conditions compare with (read as 2.6.0).
HAPROXY_VERSION = "2.6"
