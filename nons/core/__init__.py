"""What a network is: types, nodes, layers, networks and specs, with no I/O."""
