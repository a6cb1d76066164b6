"""How `nons ui` serves: where it listens, what it keeps, and where traces open.

Built once at the edge (the `nons ui` command reads arguments and `NONS_JAEGER_URL`);
nothing under `nons.ui` reads the environment.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from nons.core.errors import ConfigurationError

__all__ = ("DEFAULT_PORT", "JAEGER_URL_ENV_VAR", "LOOPBACK_NAMES", "UiSettings", "is_loopback")

DEFAULT_PORT = 8765
"""Where the page is served unless `--port` says otherwise."""

JAEGER_URL_ENV_VAR = "NONS_JAEGER_URL"
"""Jaeger's web UI (e.g. `http://127.0.0.1:16686`): each trace id links to `<url>/trace/<id>`."""

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
"""Host names a loopback page may be asked for (anything else is refused: DNS rebinding)."""


@dataclass(frozen=True, kw_only=True)
class UiSettings:
    """The web server's configuration."""

    host: str = "127.0.0.1"
    """Interface to listen on; anything but loopback is reachable from other machines."""
    port: int = DEFAULT_PORT
    """TCP port (0 picks a free one)."""
    jaeger_url: str | None = None
    """Jaeger's web UI, for trace links (`None`: ids only)."""
    max_executions: int = 500
    """Executions kept in memory for the list (older ones are looked up in the stream)."""
    replay_events: int = 20_000
    """How many of the newest recorded events are replayed at start."""
    discovery_interval_s: float = 2.0
    """How often `$SRV.INFO` is asked who serves what."""
    discovery_wait_s: float = 0.3
    """How long the replies of one discovery round are gathered."""
    status_interval_s: float = 0.25
    """How often the NATS connection's state is checked for the banner."""
    lookup_timeout_s: float = 1.0
    """Bound on reading one execution (or the replay) from the event stream."""
    run_timeout_s: float = 120.0
    """Deadline of an execution started from the page."""

    def __post_init__(self) -> None:
        """Refuse a Jaeger URL a link could not safely point to.

        Raises:
            ConfigurationError: the Jaeger URL is not http(s)://host[...].
        """
        if self.jaeger_url is not None:
            parts = urlsplit(self.jaeger_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigurationError(
                    f"{JAEGER_URL_ENV_VAR} (or --jaeger-url) must be an http(s) URL such as "
                    "http://127.0.0.1:16686"
                )

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the page."""
        return is_loopback(self.host)

    @property
    def trace_base(self) -> str | None:
        """The Jaeger URL without a trailing slash."""
        return self.jaeger_url.rstrip("/") if self.jaeger_url else None


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
