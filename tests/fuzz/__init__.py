"""Differential fuzzing of fastlb's HTTP/1 front against HAProxy 2.6 (see __main__)."""
