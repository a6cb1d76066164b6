"""`nons ui`: a live web view of networks, executions, costs and traces, served over NATS.

`board` folds events into what the page shows (pure), `feed` keeps it current from NATS
(live events, the `NONS_EVENTS` history, discovery), `hub` fans changes out to open
pages, `app` is the Starlette app (page, JSON API, server-sent events), `server` runs it
under uvicorn, and `locate` finds the embedded nats-server of a local `nons up`. The
page itself is static HTML and script under `static/`, shipped in the package.
"""

from __future__ import annotations

__all__ = ()
