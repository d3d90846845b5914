"""A real webhook endpoint on 127.0.0.1 for the webhook tests: verifies every signature with
the published ``standardwebhooks`` library and answers as each test scripts it."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"synthetic-test-secret-0123456789").decode()


@dataclass
class Receiver:
    """``script[id]`` is the list of answers to give (status, headers), then ``default``."""

    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    default: int = 200
    accepted: list[str] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    bad_signatures: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        msg_id = request.headers["webhook-id"]
        try:
            Webhook(SECRET).verify(body, dict(request.headers))
        except Exception as exc:  # noqa: BLE001 - recorded and asserted on
            self.bad_signatures.append(f"{msg_id}: {exc}")
        self.attempts[msg_id] += 1
        if answers := self.script.get(msg_id):
            status, headers = answers.pop(0)
            return web.Response(status=status, headers=headers)
        if self.default != 200:
            return web.Response(status=self.default)
        self.accepted.append(msg_id)
        return web.Response(status=200)


@pytest.fixture()
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    rec.url = f"http://{host}:{port}/hook"
    yield rec
    await runner.cleanup()
