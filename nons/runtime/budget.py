"""Moved to `nons.coordinator.budget` (budgets are the coordinator's job)."""

from nons.coordinator.budget import *  # noqa: F403
from nons.coordinator.budget import __all__ as __all__
