"""Benchmarks of lightbus_sync against bare redis-py, and against Lightbus 1.1.2 and
Dramatiq 2.x (``benchmarks/peers/``, each in its own virtualenv).

Run ``python -m benchmarks`` (see benchmarks/README.md). Not part of the test
suite: nothing here asserts speed; targets are printed, never enforced.
"""
