"""The PostgreSQL sink's tables and statements, kept apart from the code that runs them.

Every statement is idempotent: `nons_events` is keyed by (execution id, stream
sequence) and inserted with `ON CONFLICT DO NOTHING`, and the summary tables are
upserts that never move a finished execution or node call back to `running`, so
events may arrive twice or out of order.
"""

from __future__ import annotations

__all__ = (
    "CREATE_SCHEMA",
    "EXECUTION_FINISHED",
    "EXECUTION_STARTED",
    "INSERT_EVENT",
    "NODE_FINISHED",
    "NODE_STARTED",
    "SCHEMA_LOCK",
)

SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('nons_sink_schema'))"
"""Serialises schema creation between sinks starting at once."""

CREATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS nons_executions (
    execution_id text PRIMARY KEY,
    network text NOT NULL,
    status text NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    duration_ms double precision,
    layers integer,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    cache_read_tokens bigint NOT NULL DEFAULT 0,
    cache_creation_tokens bigint NOT NULL DEFAULT 0,
    total_tokens bigint NOT NULL DEFAULT 0,
    cost_usd double precision NOT NULL DEFAULT 0,
    is_mock boolean NOT NULL DEFAULT false,
    error_type text,
    error_message text,
    failed_layer integer,
    trace_id text,
    metadata jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS nons_executions_network_started
    ON nons_executions (network, started_at);
CREATE TABLE IF NOT EXISTS nons_events (
    execution_id text NOT NULL,
    stream_sequence bigint NOT NULL,
    network text NOT NULL,
    type text NOT NULL,
    ts timestamptz NOT NULL,
    trace_id text,
    span_id text,
    payload jsonb NOT NULL,
    PRIMARY KEY (execution_id, stream_sequence)
);
CREATE INDEX IF NOT EXISTS nons_events_network_ts ON nons_events (network, ts);
CREATE TABLE IF NOT EXISTS nons_node_calls (
    execution_id text NOT NULL,
    layer_index integer NOT NULL,
    node_id text NOT NULL,
    attempt integer NOT NULL,
    network text NOT NULL,
    status text NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    duration_ms double precision,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    total_tokens bigint NOT NULL DEFAULT 0,
    cost_usd double precision NOT NULL DEFAULT 0,
    is_mock boolean NOT NULL DEFAULT false,
    error_type text,
    error_message text,
    PRIMARY KEY (execution_id, layer_index, node_id, attempt)
);
ALTER TABLE nons_node_calls ADD COLUMN IF NOT EXISTS cache_read_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE nons_node_calls
    ADD COLUMN IF NOT EXISTS cache_creation_tokens bigint NOT NULL DEFAULT 0;
"""
"""Tables and indexes, created when missing."""

INSERT_EVENT = """
INSERT INTO nons_events
    (execution_id, stream_sequence, network, type, ts, trace_id, span_id, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
ON CONFLICT DO NOTHING
RETURNING 1
"""
"""One event; returns nothing when it was recorded before (a redelivery)."""

EXECUTION_STARTED = """
INSERT INTO nons_executions
    (execution_id, network, status, started_at, layers, trace_id, metadata)
VALUES ($1, $2, 'running', $3, $4, $5, $6::jsonb)
ON CONFLICT (execution_id) DO UPDATE SET
    started_at = EXCLUDED.started_at,
    layers = EXCLUDED.layers,
    trace_id = COALESCE(nons_executions.trace_id, EXCLUDED.trace_id),
    metadata = COALESCE(EXCLUDED.metadata, nons_executions.metadata),
    updated_at = now()
"""
"""`execution.started`: a new row, or the start of one whose end arrived first."""

EXECUTION_FINISHED = """
INSERT INTO nons_executions
    (execution_id, network, status, started_at, finished_at, duration_ms,
     input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, total_tokens,
     cost_usd, is_mock, error_type, error_message, failed_layer, trace_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (execution_id) DO UPDATE SET
    status = EXCLUDED.status,
    started_at = COALESCE(nons_executions.started_at, EXCLUDED.started_at),
    finished_at = EXCLUDED.finished_at,
    duration_ms = EXCLUDED.duration_ms,
    input_tokens = EXCLUDED.input_tokens,
    output_tokens = EXCLUDED.output_tokens,
    cache_read_tokens = EXCLUDED.cache_read_tokens,
    cache_creation_tokens = EXCLUDED.cache_creation_tokens,
    total_tokens = EXCLUDED.total_tokens,
    cost_usd = EXCLUDED.cost_usd,
    is_mock = nons_executions.is_mock OR EXCLUDED.is_mock,
    error_type = EXCLUDED.error_type,
    error_message = EXCLUDED.error_message,
    failed_layer = EXCLUDED.failed_layer,
    trace_id = COALESCE(nons_executions.trace_id, EXCLUDED.trace_id),
    updated_at = now()
"""
"""`execution.completed` / `execution.failed`: the final status, usage, cost and error."""

NODE_STARTED = """
INSERT INTO nons_node_calls
    (execution_id, layer_index, node_id, attempt, network, status, started_at)
VALUES ($1, $2, $3, $4, $5, 'running', $6)
ON CONFLICT (execution_id, layer_index, node_id, attempt) DO UPDATE SET
    started_at = EXCLUDED.started_at
"""
"""`node.started`: never overwrites the status of a call whose end arrived first."""

NODE_FINISHED = """
INSERT INTO nons_node_calls
    (execution_id, layer_index, node_id, attempt, network, status, started_at, finished_at,
     duration_ms, input_tokens, output_tokens, total_tokens, cost_usd, is_mock,
     error_type, error_message, cache_read_tokens, cache_creation_tokens)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (execution_id, layer_index, node_id, attempt) DO UPDATE SET
    status = EXCLUDED.status,
    started_at = COALESCE(nons_node_calls.started_at, EXCLUDED.started_at),
    finished_at = EXCLUDED.finished_at,
    duration_ms = COALESCE(EXCLUDED.duration_ms, nons_node_calls.duration_ms),
    input_tokens = EXCLUDED.input_tokens,
    output_tokens = EXCLUDED.output_tokens,
    total_tokens = EXCLUDED.total_tokens,
    cost_usd = EXCLUDED.cost_usd,
    is_mock = EXCLUDED.is_mock,
    error_type = EXCLUDED.error_type,
    error_message = EXCLUDED.error_message,
    cache_read_tokens = EXCLUDED.cache_read_tokens,
    cache_creation_tokens = EXCLUDED.cache_creation_tokens
"""
"""`node.completed` / `node.failed` / the failed attempt a `node.retrying` announces."""
