"""Start the Faust worker for the pipeline built from the environment."""

from __future__ import annotations

import asyncio

import faust

from streams.bootstrap import build_worker, prepare_topics
from streams.clock import clock_from_setting
from streams.logs import get_logger
from streams.settings import Settings


def run_worker(loglevel: str = "INFO") -> int:
    settings = Settings.from_env()
    log = get_logger("dfdg.worker")
    if settings.dev_mode:
        log.warning("DEV MODE: pseudonym key and secrets are development defaults, NOT FOR PRODUCTION")
    created = asyncio.run(prepare_topics(settings))
    if created:
        log.info("topics created", count=len(created))
    clock = clock_from_setting(settings.clock, settings.clock_speed)
    if settings.role == "door":
        from streams.door_process import run_door

        return asyncio.run(run_door(settings, clock))
    worker_parts = build_worker(settings, clock)
    from streams.kafka_auth import describe

    log.info("kafka client", **describe())
    log.info("worker starting", app_id=settings.app_id, bootstrap=settings.bootstrap,
             partitions=settings.partitions, now=clock.now().isoformat())
    worker = faust.Worker(worker_parts.app, loglevel=loglevel.lower(), override_logging=False,
                          redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()
    return 0  # execute_from_commandline exits the process itself
