"""Validated names and the NATS subjects built from them, in one place.

Network names and node ids become single NATS subject tokens, so every process must
agree on them and none may contain a `.`, a wildcard or white space.
"""

from __future__ import annotations

import re

from nons.core.errors import InvalidNameError

__all__ = (
    "CANCEL_PREFIX",
    "EVENTS_PREFIX",
    "EXEC_PREFIX",
    "NODE_PREFIX",
    "cancel_subject",
    "event_subject",
    "events_filter",
    "exec_subject",
    "node_subject",
    "validate_token",
)

EXEC_PREFIX = "nons.exec"
"""Prefix of the subjects coordinators serve: `nons.exec.<network>`."""

NODE_PREFIX = "nons.node"
"""Prefix of the subjects actors serve: `nons.node.<network>.<node_id>`."""

EVENTS_PREFIX = "nons.events"
"""Prefix of the event subjects: `nons.events.<network>.<execution_id>.<event>`."""

CANCEL_PREFIX = "nons.cancel"
"""`nons.cancel.<execution_id>`: stop a durable execution (its coordinator answers,
actors stop its running calls)."""

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def validate_token(value: str, what: str = "name") -> str:
    """Return `value` when it is a valid subject token.

    Raises:
        InvalidNameError: naming the rule when `value` has other characters.
    """
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise InvalidNameError(
            f"invalid {what} {value!r}: use 1 to 128 letters, digits, '-' or '_' "
            "(it becomes one NATS subject token)"
        )
    return value


def exec_subject(network: str) -> str:
    """The subject a network's coordinators serve."""
    return f"{EXEC_PREFIX}.{network}"


def node_subject(network: str, node_id: str) -> str:
    """The subject (and queue group) of one node's actors."""
    return f"{NODE_PREFIX}.{network}.{node_id}"


def cancel_subject(execution_id: str) -> str:
    """The subject that cancels one durable execution."""
    return f"{CANCEL_PREFIX}.{execution_id}"


def event_subject(network: str, execution_id: str, event_type: str) -> str:
    """The subject one event is published on (`event_type` is dotted, e.g. `node.started`)."""
    return f"{EVENTS_PREFIX}.{network}.{execution_id}.{event_type}"


def events_filter(network: str | None = None, execution_id: str | None = None) -> str:
    """A subscription filter for the events of a network, one execution, or everything."""
    return f"{EVENTS_PREFIX}.{network or '*'}.{execution_id or '*'}.>"
