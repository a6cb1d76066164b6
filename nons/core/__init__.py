"""What a network is: types, errors, events, nodes, layers, routers, networks, specs; no I/O.

May import `nons.operators` (a node finds its operator) and `nons.resilience`
(the `nons.core.scheduler` shim) only. Running a network goes through one door,
`nons.core.executor`, which resolves the runtime (`nons.client.local`) lazily;
`tests/unit/test_architecture.py` holds core to that.
"""
