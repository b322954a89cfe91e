"""A reply through StreamGate, the same holdback `prism chat` uses, without blocking the event loop.

StreamGate pulls pieces from a plain iterator and calls the moderator between them, so it runs in a
worker thread. Upstream pieces are read on the event loop and handed to that thread through a
queue (PieceFeed); a local engine's pieces are pulled in the thread itself, under the engine's lock.
Released text comes back to the loop as events. When StreamGate closes the pieces (a block), the
upstream read is cancelled at once, which closes its connection; when the client leaves, the stop
flag ends the thread at its next piece and the upstream read is cancelled as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from concurrent.futures import Executor
from typing import Any, AsyncIterator, Callable, Iterator, Sequence

from prism_cli.serve.moderation import Moderation

_END = object()


class Cancelled(Exception):
    """The client left or the server is shutting down: the reply is dropped, nothing more is sent."""


class PieceFeed:
    """A blocking iterator over pieces put from the event loop; close() tells the producer to stop.

    Pieces that queued up while StreamGate was checking come out joined as one: when the upstream
    is faster than the moderator, each check covers more new text instead of falling further
    behind (windows and holdback count pieces, so a joined piece only ever holds back more)."""

    def __init__(self, on_close: Callable[[], None]):
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._on_close = on_close
        self._pending: Any = None
        self.closed = False

    def put(self, item: Any) -> None:
        self._q.put(item)

    def __iter__(self) -> "PieceFeed":
        return self

    def __next__(self) -> str:
        if self.closed:
            raise StopIteration
        item, self._pending = (self._pending, None) if self._pending is not None else (self._q.get(), None)
        if item is _END:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        parts = [item]
        while not self._q.empty():
            nxt = self._q.get_nowait()
            if not isinstance(nxt, str):
                self._pending = nxt  # the end or an error: after the text that came before it
                break
            parts.append(nxt)
        return "".join(parts) if len(parts) > 1 else item

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_close()


async def gated(
    moderation: Moderation,
    executor: Executor,
    context: Sequence[dict[str, str]],
    *,
    source: AsyncIterator[str] | None = None,
    make_pieces: Callable[[], Iterator[str]] | None = None,
    lock: Any = None,
    shutting_down: threading.Event | None = None,
) -> AsyncIterator[tuple[str, Any]]:
    """Yield ("text", released) as checks approve text, then ("done", StreamGate) or ("error", exc).

    Exactly one of `source` (an async iterator of upstream pieces) or `make_pieces` (called in the
    worker thread, e.g. a local engine's stream) gives the reply."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()
    producer: asyncio.Task[None] | None = None

    def soon(fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening any more
            loop.call_soon_threadsafe(fn, *args)

    def emit(item: tuple[str, Any]) -> None:
        soon(events.put_nowait, item)

    hung_up = False

    def hang_up() -> None:
        """Stop reading the upstream now (StreamGate closed the pieces, or the reply is over); once."""
        nonlocal hung_up
        if producer is not None and not hung_up:
            hung_up = True
            producer.cancel()

    if source is not None:
        feed = PieceFeed(on_close=lambda: soon(hang_up))

        async def produce() -> None:
            try:
                async for piece in source:
                    feed.put(piece)
                feed.put(_END)
            except Exception as e:  # noqa: BLE001 - handed to StreamGate's thread, which reports it
                feed.put(e)
            finally:
                await source.aclose()  # type: ignore[attr-defined]

        producer = asyncio.create_task(produce())
        make_pieces = lambda: feed  # noqa: E731
    assert make_pieces is not None

    def stopped() -> bool:
        return stop.is_set() or (shutting_down is not None and shutting_down.is_set())

    def work() -> None:
        sg = moderation.stream_gate(context, should_stop=stopped)
        try:
            with lock if lock is not None else contextlib.nullcontext():
                if stopped():
                    raise Cancelled()
                for text in sg.run(make_pieces()):
                    emit(("text", text))
        except BaseException as e:  # noqa: BLE001 - every failure ends this reply, none the server
            emit(("error", e))
            return
        finally:
            if sg.verdict is not None:
                moderation.log(sg.verdict, sg.released)
        emit(("done", sg))

    worker = loop.run_in_executor(executor, work)
    try:
        while True:
            kind, value = await events.get()
            yield kind, value
            if kind != "text":
                return
    finally:
        stop.set()
        if source is not None:
            feed.put(Cancelled())
        hang_up()
        await _settle(producer, worker)


async def _settle(*futures: Any) -> None:
    """Wait for the reader task and the worker thread to end, even inside a cancelled scope."""
    import anyio

    with anyio.CancelScope(shield=True):
        await asyncio.gather(*(f for f in futures if f is not None), return_exceptions=True)
