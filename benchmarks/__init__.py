"""The NoN performance suite: every figure a ratio against a raw nats-py floor of the same run.

Run it with `python -m benchmarks` (or `make bench`); `--quick` is a one-minute smoke run.
"""

__all__ = ()
