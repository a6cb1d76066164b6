"""Moved to `nons.resilience.policies` (the coordinator and providers share it)."""

from nons.resilience.policies import *  # noqa: F403
from nons.resilience.policies import __all__ as __all__
