"""`python -m nons` runs the `nons` command."""

from nons.cli import main

raise SystemExit(main())
