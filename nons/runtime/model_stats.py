"""Moved to `nons.coordinator.model_stats`; this path stays working.

The README documents `model_selector="nons.runtime.model_stats:adaptive_selector"`.
"""

from nons.coordinator.model_stats import *  # noqa: F403
from nons.coordinator.model_stats import __all__ as __all__
