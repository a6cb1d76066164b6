"""`nons result`, `nons executions`, `nons cancel`: durable executions by id, from anywhere.

They read the JetStream buckets directly (no coordinator needs to be up): a result
stays readable after its caller and its coordinator went away, for the retention.
"""

from __future__ import annotations

import datetime
import sys

import msgspec

from nons.cli._client import show_result
from nons.cli._common import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, CliContext, connect, emit
from nons.client import Client, ExecutionInfo
from nons.core.errors import DurabilityUnavailableError, ExecutionTimeoutError, NotFoundError

__all__ = ("EXIT_RUNNING", "run_cancel", "run_executions", "run_result")

EXIT_RUNNING = 4
"""`nons result` of an execution still running (after `--wait`)."""


async def run_result(
    context: CliContext, execution_id: str, *, as_json: bool, wait_s: float
) -> int:
    """Print a durable execution's reply, as `nons exec` would have."""
    nc = await connect(context, "nons-result")
    client = Client(nc, owns_connection=True)
    try:
        try:
            result = await client.result(execution_id, wait_s=wait_s)
        except (NotFoundError, DurabilityUnavailableError) as exc:
            emit(f"nons result: {exc.type}: {exc.message}", sys.stderr)
            return EXIT_FAILED if isinstance(exc, NotFoundError) else EXIT_UNAVAILABLE
        except ExecutionTimeoutError as exc:
            emit(f"nons result: running: {exc.message}", sys.stderr)
            return EXIT_RUNNING
        return show_result(result, as_json=as_json, command="result")
    finally:
        await client.close()


async def run_executions(context: CliContext, network: str | None, *, as_json: bool) -> int:
    """List running and recent durable executions, newest first."""
    nc = await connect(context, "nons-executions")
    client = Client(nc, owns_connection=True)
    try:
        infos = await client.executions(network)
    finally:
        await client.close()
    if as_json:
        emit(msgspec.json.encode(infos).decode())
        return EXIT_OK
    if not infos:
        emit("no durable executions" + (f" of {network}" if network else ""), sys.stderr)
        return EXIT_OK
    emit(f"{'EXECUTION':34} {'NETWORK':20} {'STATUS':10} {'LAYER':>5} {'COST USD':>10}  STARTED")
    for info in infos:
        emit(_row(info))
    return EXIT_OK


async def run_cancel(context: CliContext, execution_id: str, *, as_json: bool) -> int:
    """Cancel a durable execution; print where it ended."""
    nc = await connect(context, "nons-cancel")
    client = Client(nc, owns_connection=True)
    try:
        try:
            info = await client.cancel(execution_id)
        except NotFoundError as exc:
            emit(f"nons cancel: {exc.type}: {exc.message}", sys.stderr)
            return EXIT_FAILED
    finally:
        await client.close()
    if as_json:
        emit(msgspec.json.encode(info).decode())
    else:
        emit(_row(info))
    return EXIT_OK


def _row(info: ExecutionInfo) -> str:
    started = datetime.datetime.fromtimestamp(info.started_at, tz=datetime.UTC)
    status = info.status if info.error_type is None else f"{info.status}:{info.error_type}"
    return (
        f"{info.execution_id:34} {info.network:20} {status:10} {info.current_layer:>5} "
        f"{info.cost_usd:>10.6f}  {started:%Y-%m-%d %H:%M:%S}Z"
    )
