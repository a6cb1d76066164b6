"""The event schema, at the path it had before it moved to `nons.core.events`.

Events are domain vocabulary (core, runtime, actors, sinks and the CLI all use them),
not telemetry; this module keeps the old import path working.
"""

from nons.core.events import *  # noqa: F403
from nons.core.events import __all__ as __all__
