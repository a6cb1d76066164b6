"""What a network is: types, errors, events, nodes, layers, routers, networks, specs; no I/O.

May import `nons.operators` only (a node finds its operator); `nons.core.scheduler`
is a re-export of `nons.resilience.settings` kept for the documented path.
Running a network goes through one door, `nons.core.executor`, which resolves the
runtime (`nons.client.local`) lazily; `tests/unit/test_architecture.py` holds core
to that.
"""
