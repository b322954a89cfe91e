"""The server's settings and its admission control: a fixed number of requests generate at once,
a bounded number wait, the rest get HTTP 429 at once instead of piling up."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Callable

from prism_cli.serve.errors import ApiError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8787
    api_key: str | None = None
    upstream: str | None = None
    upstream_key: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    """Most seconds the upstream may stay silent (before its headers, or between two pieces)."""
    max_body: int = 4 << 20
    slots: int = 8
    """Requests generating at once (in-process mode: always 1)."""
    queue: int = 32
    """Requests waiting for a slot before new ones get 429."""
    grace: float = 10.0
    """On SIGTERM: seconds open streams get to finish before they are cancelled."""
    log_text: bool = False


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Admission:
    """`await enter()` returns the slot's release function, or raises 429 when the queue is full."""

    def __init__(self, slots: int, queue: int):
        self.slots, self.queue = slots, queue
        self._sem = asyncio.Semaphore(slots)
        self.waiting = 0
        self.active = 0

    async def enter(self) -> Callable[[], None]:
        if self._sem.locked() and self.waiting >= self.queue:
            raise ApiError(
                429, f"prism is busy: {self.active} requests running and {self.waiting} waiting (--slots, --queue)",
                type="rate_limit_error", code="queue_full",
            )  # fmt: skip
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.active -= 1
                self._sem.release()

        return release
