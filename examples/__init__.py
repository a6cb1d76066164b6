"""Runnable example networks, each working offline on the mock provider.

Serve one with `nons up examples.quickstart:network`, or run `python examples/quickstart.py`.
"""
