"""What the worker shows operators: the status behind the live page, the Prometheus gauges it
refreshes every few seconds, and the web server for ``/metrics``, ``/health``, ``/ready`` and
``/live``."""

from __future__ import annotations

from collections.abc import Callable

from streams.clock import Clock
from streams.deadlines import DeadlineIndex
from streams.lag import LagHistory, LagTracker, collect_lag
from streams.logs import get_logger
from streams.metrics import Metrics
from streams.saga_watch import SagaWatch
from streams.web import PipelineStatus, Readiness, build_web_app

__all__ = ["Operators"]

log = get_logger("dfdg.worker")


class Operators:
    def __init__(self, metrics: Metrics, index: DeadlineIndex, clock: Clock, bootstrap: str, group: str,
                 is_ready: Callable[[], bool], sagas: SagaWatch | None = None) -> None:
        self.metrics = metrics
        self._sagas = sagas or SagaWatch()
        self.readiness = Readiness()
        self.lag_history = LagHistory()
        self._lag_tracker = LagTracker()
        self._index = index
        self._clock = clock
        self._bootstrap = bootstrap
        self._group = group
        self._is_ready = is_ready

    def status(self) -> PipelineStatus:
        now = self._clock.now()
        overdue_s = self._index.oldest_overdue_seconds(now)
        report = self.lag_history.latest
        status = "STARTING" if not self._is_ready() else (report.status.value if report else "OK")
        return PipelineStatus(status=status, dead_letters=self.metrics.dead_letters_by_code(),
                              deadlines_pending=self._pending(), deadlines_overdue=int(overdue_s > 0),
                              oldest_overdue_s=overdue_s, detail=f"clock {now.isoformat(timespec='seconds')}",
                              archive_sagas=self._sagas.waiting(),
                              archive_oldest_wait_s=self._sagas.oldest_wait_seconds(now))

    def _pending(self) -> int:
        # Held in the index's window, and beyond it (the index keeps that count exact).
        return len(self._index) + self._index.beyond

    async def refresh(self) -> None:
        now = self._clock.now()
        self.metrics.set_deadlines(self._pending(), self._index.oldest_overdue_seconds(now))
        self.metrics.set_archive_sagas(self._sagas.waiting(), self._sagas.oldest_wait_seconds(now))
        try:
            snapshot = await collect_lag(self._bootstrap, None, self._group)
        except Exception as exc:  # noqa: BLE001 - lag is best effort; the pipeline goes on
            log.warning("lag collection failed", error=type(exc).__name__)
            return
        report = self._lag_tracker.observe(snapshot)
        self.metrics.set_lag(report)
        self.lag_history.record(report)

    async def serve(self, host: str, port: int) -> None:
        from aiohttp import web

        runner = web.AppRunner(build_web_app(self.metrics, self.readiness, self.lag_history, self.status))
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        log.info("operator pages listening", url=f"http://{host}:{bound}/live", port=bound)
