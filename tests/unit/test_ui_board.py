"""The `nons ui` board: executions, nodes and totals folded from plain events (no NATS)."""

from __future__ import annotations

from typing import Any

import msgspec

from nons.core.events import (
    CircuitChanged,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    LayerCompleted,
    LayerStarted,
    NodeCompleted,
    NodeDelta,
    NodeFailed,
    NodeRetrying,
    NodeStarted,
)
from nons.core.results import ErrorInfo, LayerResult, NodeResult
from nons.core.types import TokenUsage
from nons.runtime.messages import ExecReply
from nons.ui.board import MAX_DELTA_CHARS, Board

NET = "net"
EID = "e1"
LOST = ErrorInfo(type="node_lost", message="nobody worked on it", retryable=True)
BROKEN = ErrorInfo(type="operator_error", message="it broke")


def common(ts: float, execution_id: str = EID) -> dict[str, Any]:
    return {"ts": ts, "network": NET, "execution_id": execution_id, "trace_id": "t" * 32}


def started(board: Board, execution_id: str = EID) -> None:
    board.apply(ExecutionStarted(**common(1.0, execution_id), layers=2))
    board.apply(LayerStarted(**common(1.0, execution_id), layer_index=0, node_ids=["a", "b"]))


def test_a_node_moves_through_running_retrying_and_completed() -> None:
    board = Board()
    started(board)
    view = board.executions[EID]
    assert [view.nodes[n].status for n in ("a", "b")] == ["pending", "pending"]
    assert [layer["status"] for layer in view.detail()["layers"]] == ["running", "pending"]

    board.apply(NodeStarted(**common(1.1), layer_index=0, node_id="a"))
    board.apply(NodeDelta(**common(1.2), layer_index=0, node_id="a", text="par"))
    assert (view.nodes["a"].status, view.nodes["a"].text) == ("running", "par")

    board.apply(
        NodeRetrying(
            **common(1.3), layer_index=0, node_id="a", attempt=1, error=LOST, reason="node_lost"
        )
    )
    assert (view.nodes["a"].status, view.nodes["a"].retry_reason) == ("retrying", "node_lost")
    assert view.nodes["a"].error == {
        "type": "node_lost",
        "message": LOST.message,
        "retryable": True,
    }

    board.apply(NodeStarted(**common(1.4), layer_index=0, node_id="a", attempt=2))
    assert view.nodes["a"].text == ""  # the new attempt streams afresh
    board.apply(
        NodeCompleted(
            **common(1.5),
            layer_index=0,
            node_id="a",
            attempt=2,
            duration_ms=100.0,
            usage=TokenUsage(prompt_tokens=10, completion_tokens=5),
            cost_usd=0.25,
        )
    )
    node = view.nodes["a"]
    assert (node.status, node.attempt, node.tokens, node.cost_usd, node.error) == (
        "completed",
        2,
        15,
        0.25,
        None,
    )


def test_cached_fallback_and_failed_nodes_are_told_apart() -> None:
    board = Board()
    started(board)
    board.apply(NodeCompleted(**common(1.1), layer_index=0, node_id="a", cached=True))
    board.apply(NodeCompleted(**common(1.1), layer_index=0, node_id="b", status="fallback"))
    board.apply(LayerStarted(**common(1.2), layer_index=1, node_ids=["c"]))
    board.apply(NodeFailed(**common(1.3), layer_index=1, node_id="c", error=BROKEN))
    view = board.executions[EID]
    assert {n: view.nodes[n].status for n in "abc"} == {
        "a": "cached",
        "b": "fallback",
        "c": "failed",
    }
    assert view.nodes["c"].error is not None
    assert view.nodes["c"].error["type"] == "operator_error"
    assert view.summary()["cached_nodes"] == 1


def test_finished_executions_add_to_their_network_totals_once() -> None:
    board = Board()
    started(board)
    board.apply(LayerCompleted(**common(1.5), layer_index=0, status="completed", duration_ms=400.0))
    done = ExecutionCompleted(
        **common(2.0),
        duration_ms=1000.0,
        usage=TokenUsage(prompt_tokens=30, completion_tokens=12),
        cost_usd=0.5,
        is_mock=True,
    )
    board.apply(done)
    started(board, "e2")
    board.apply(ExecutionFailed(**common(3.0, "e2"), error=BROKEN, duration_ms=10.0))
    assert board.totals() == {
        NET: {"executions": 2, "tokens": 42, "cost_usd": 0.5, "saved_usd": 0.0}
    }
    summary = board.executions[EID].summary()
    assert (summary["status"], summary["duration_ms"], summary["is_mock"]) == (
        "completed",
        1000.0,
        True,
    )
    assert board.executions["e2"].summary()["error_type"] == "operator_error"
    assert [row["execution_id"] for row in board.summaries()] == ["e2", EID]

    # The reply arriving after the terminal event adds its output and savings, not a count.
    reply = ExecReply(
        execution_id=EID,
        network=NET,
        status="completed",
        output="<b>final</b>",
        layers=[
            LayerResult(
                layer_index=0,
                status="completed",
                nodes=[NodeResult(node_id="a", operator="op", output="x", saved_cost_usd=0.125)],
            )
        ],
    )
    board.attach_reply(reply)
    detail = board.executions[EID].detail()
    assert (detail["output"], detail["output_known"], detail["saved_usd"]) == (
        "<b>final</b>",
        True,
        0.125,
    )
    assert board.totals()[NET]["executions"] == 2
    assert board.totals()[NET]["saved_usd"] == 0.125
    msgspec.json.encode(detail)  # everything the page gets is JSON-ready


def test_a_reply_whose_node_events_were_missed_still_finishes_its_nodes() -> None:
    board = Board()
    error = ErrorInfo(type="operator_error", message="no")
    board.attach_reply(
        ExecReply(
            execution_id="lone",
            network=NET,
            status="partial",
            output=None,
            layers=[
                LayerResult(
                    layer_index=0,
                    status="partial",
                    nodes=[
                        NodeResult(node_id="a", operator="op", output="x"),
                        NodeResult(node_id="b", operator="op", status="failed", error=error),
                    ],
                )
            ],
        )
    )
    nodes = board.executions["lone"].detail()["nodes"]
    assert [(n["node_id"], n["status"]) for n in nodes] == [("a", "completed"), ("b", "failed")]


def test_an_event_delivered_twice_is_folded_once() -> None:
    """The live feed and a lookup in the event stream can both bring the same events."""
    board = Board()
    events = [
        NodeStarted(**common(1.0), layer_index=0, node_id="a", attempt=1),
        NodeCompleted(**common(2.0), layer_index=0, node_id="a", attempt=1, duration_ms=1000.0),
    ]
    board.apply_all(events)
    board.apply(events[0])  # the start again, after the completion: a stream lookup
    assert board.executions[EID].detail()["nodes"][0]["status"] == "completed"


def test_streamed_text_is_bounded_per_node() -> None:
    board = Board()
    started(board)
    chunk = "x" * 10_000
    for index in range(MAX_DELTA_CHARS // len(chunk) + 3):
        board.apply(NodeDelta(**common(1.1), layer_index=0, node_id="a", index=index, text=chunk))
    assert len(board.executions[EID].nodes["a"].text) == MAX_DELTA_CHARS


def test_the_oldest_finished_execution_goes_first_when_full() -> None:
    board = Board(capacity=2)
    started(board, "running-old")
    started(board, "done")
    board.apply(ExecutionFailed(**common(2.0, "done"), error=BROKEN))
    started(board, "new")
    assert list(board.executions) == ["running-old", "new"]


def test_breaker_states_are_kept_per_node() -> None:
    board = Board()
    changed = board.apply(
        CircuitChanged(**common(1.0), node_id="a", old_state="closed", new_state="open")
    )
    assert changed is None
    assert board.breakers == {(NET, "a"): "open"}
    assert board.executions == {}
