"""Benchmarks of lightbus_sync against bare redis-py (and, later, peers).

Run ``python -m benchmarks`` (see benchmarks/README.md). Not part of the test
suite: nothing here asserts speed; targets are printed, never enforced.
"""
