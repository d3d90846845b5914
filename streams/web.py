"""The worker's operator endpoints as an aiohttp app: /metrics, /health, /ready, /live,
/api/status and /api/lag. ``build_web_app`` runs standalone on the worker's web port;
the handlers are plain functions over ``WebState`` should the lead mount them elsewhere.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from streams.lag import LagHistory
from streams.metrics import CONTENT_TYPE, Metrics

__all__ = [
    "LIVE_PAGE",
    "PipelineStatus",
    "Readiness",
    "StatusProvider",
    "WebState",
    "api_lag",
    "api_status",
    "build_web_app",
    "health",
    "live",
    "metrics_handler",
    "ready",
]

LIVE_PAGE = Path(__file__).parent / "static" / "live.html"


@dataclass(frozen=True)
class PipelineStatus:
    """What the live page shows besides lag; counts only, nothing about a person."""

    status: str = "OK"
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    deadlines_pending: int = 0
    deadlines_overdue: int = 0
    oldest_overdue_s: float = 0.0
    detail: str = ""
    # Archive sagas waiting, per step (pending, delivered, rejected), and the longest wait (R7.2).
    archive_sagas: Mapping[str, int] = field(default_factory=dict)
    archive_oldest_wait_s: float = 0.0


StatusProvider = Callable[[], PipelineStatus | Awaitable[PipelineStatus]]


class Readiness:
    """Ready once partitions are assigned and tables recovered; not ready again after a revoke."""

    def __init__(self) -> None:
        self.assigned = False
        self.recovered = False

    def mark_assigned(self) -> None:
        self.assigned = True

    def mark_recovered(self) -> None:
        self.recovered = True

    def mark_revoked(self) -> None:
        # Tables are recovered again for the next assignment, so both flags drop.
        self.assigned = False
        self.recovered = False

    @property
    def ready(self) -> bool:
        return self.assigned and self.recovered


@dataclass
class WebState:
    metrics: Metrics
    readiness: Readiness
    lag_history: LagHistory
    status_provider: StatusProvider


_STATE: web.AppKey[WebState] = web.AppKey("dfdg_web_state", WebState)


def _state(request: web.Request) -> WebState:
    return request.app[_STATE]


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus text format."""
    resp = web.Response(body=_state(request).metrics.render())
    resp.headers["Content-Type"] = CONTENT_TYPE
    return resp


async def health(request: web.Request) -> web.Response:
    """200 while the process lives (liveness)."""
    return web.json_response({"status": "alive"})


async def ready(request: web.Request) -> web.Response:
    """503 until partitions are assigned and tables recovered, then 200 (readiness)."""
    r = _state(request).readiness
    body = {"ready": r.ready, "assigned": r.assigned, "recovered": r.recovered}
    return web.json_response(body, status=200 if r.ready else 503)


async def live(request: web.Request) -> web.FileResponse:
    """The self-contained live page."""
    return web.FileResponse(LIVE_PAGE, headers={"Cache-Control": "no-store"})


async def _pipeline_status(state: WebState) -> PipelineStatus:
    result = state.status_provider()
    if inspect.isawaitable(result):
        return await result
    return result


async def api_status(request: web.Request) -> web.Response:
    """Pipeline status, lag per topic over the last hour, dead letters by code, deadlines."""
    state = _state(request)
    ps = await _pipeline_status(state)
    latest = state.lag_history.latest
    lag_status = latest.status.value if latest is not None else "UNKNOWN"
    body: dict[str, Any] = {
        "generated_at": time.time(),
        "status": ps.status,
        "detail": ps.detail,
        "ready": state.readiness.ready,
        "lag": {
            "status": lag_status,
            "window_s": state.lag_history.max_age_s,
            "series": state.lag_history.series(),
            "groups": [{"group": g.group, "status": g.status.value, "total_lag": g.total_lag}
                       for g in (latest.groups if latest else ())],
        },
        "dead_letters": dict(ps.dead_letters),
        "deadlines": {"pending": ps.deadlines_pending, "overdue": ps.deadlines_overdue,
                      "oldest_overdue_s": ps.oldest_overdue_s},
        "archive_sagas": {"waiting": dict(ps.archive_sagas), "total": sum(ps.archive_sagas.values()),
                          "oldest_wait_s": ps.archive_oldest_wait_s},
    }
    return web.json_response(body)


async def api_lag(request: web.Request) -> web.Response:
    """The latest evaluated lag report (as ``dfdg lag --json``), or 503 before the first one."""
    latest = _state(request).lag_history.latest
    if latest is None:
        return web.json_response({"error": "no lag observation yet"}, status=503)
    return web.json_response(latest.to_dict())


def build_web_app(metrics: Metrics, readiness: Readiness, lag_history: LagHistory,
                  status_provider: StatusProvider) -> web.Application:
    """An aiohttp app serving every operator endpoint."""
    app = web.Application()
    app[_STATE] = WebState(metrics, readiness, lag_history, status_provider)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/live", live)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/api/lag", api_lag)
    return app
