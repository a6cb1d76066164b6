"""The one place where exceptions become wire errors (`ErrorInfo`) and back.

Only actor and coordinator boundaries catch `Exception`; they call `error_info` so
that whatever went wrong reaches the caller as a typed, secret-free error.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from nons.core.errors import ExecutionError, InternalError, NonsError
from nons.core.results import ErrorInfo, NodeResult

__all__ = ("error_info", "failed_result", "raise_error")

_MAX_MESSAGE = 2000
"""Longest error message sent on the wire; longer ones are cut."""

if TYPE_CHECKING:
    from nons.core.layer import LayerMember

logger = logging.getLogger("nons.runtime")


def error_info(exc: BaseException) -> ErrorInfo:
    """The wire form of any exception caught at a boundary.

    Our own errors keep their type and details; anything else is an `internal_error`
    whose message names the exception class (and is logged with its traceback).
    """
    if isinstance(exc, ExecutionError):
        info = ErrorInfo.from_exception(exc)
    elif isinstance(exc, NonsError):
        info = ErrorInfo(type="configuration_error", message=str(exc))
    else:
        logger.error("unexpected error at a runtime boundary", exc_info=exc)
        info = ErrorInfo(
            type=InternalError.type, message=f"{type(exc).__name__}: {exc}", retryable=False
        )
    if len(info.message) > _MAX_MESSAGE:
        info = ErrorInfo(
            type=info.type,
            message=info.message[:_MAX_MESSAGE] + "...",
            retryable=info.retryable,
            details=info.details,
        )
    return info


def raise_error(info: ErrorInfo) -> None:
    """Raise the typed exception a wire error stands for.

    Raises:
        ExecutionError: always, the subclass named by `info.type`.
    """
    raise info.to_exception()


def failed_result(member: LayerMember, exc: BaseException) -> NodeResult:
    """The failed result of a call of `member` that raised `exc` (actor and coordinator)."""
    return NodeResult(
        node_id=member.node_id,
        operator=member.operator_name,
        status="failed",
        error=error_info(exc),
    )
