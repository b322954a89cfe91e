"""Test helper: a real OpenAI-compatible HTTP server on 127.0.0.1 that plays a script.

It records every request it receives (so a test can prove a prompt never reached it) and streams
the reply it was told to, one SSE event per token, noting how many it could send before the
client hung up. Scripts also misbehave on purpose: die mid-stream, send garbage, stall.

    with scripted_upstream() as up:
        up.script = Script(tokens=["Hello", " world"])
        ... up.url, up.seen, up.last.sent, up.last.aborted ...
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator


@dataclass
class Script:
    tokens: list[str] = field(default_factory=lambda: ["Hello", " there", "."])
    delay: float = 0.0
    """Seconds between tokens."""
    stall: float = 0.0
    """Seconds before the response headers."""
    die_after: int | None = None
    """Close the connection after this many tokens, without finishing the stream."""
    garbage: bytes | None = None
    """Sent as the body after the headers, instead of events."""
    status: int = 200
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """[{"name", "arguments"}] sent after the tokens, streamed as servers do: the id, type and
    name first, then the arguments in pieces; the reply then ends with finish_reason "tool_calls"."""


@dataclass
class Played:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    sent: int = 0
    aborted: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "test"}]})
        else:
            self._json(404, {"error": {"message": "no such path"}})

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        played = Played(self.path, body, dict(self.headers.items()))
        self.server.seen.append(played)
        try:
            self._play(self.server.script, played, chat=self.path.endswith("/chat/completions"))
        except (BrokenPipeError, ConnectionResetError):
            played.aborted = True
        finally:
            played.done.set()

    def _play(self, s: Script, played: Played, chat: bool) -> None:
        if s.stall:
            time.sleep(s.stall)
        if s.status != 200:
            self._json(s.status, {"error": {"message": f"scripted failure {s.status}"}})
            return
        finish = "tool_calls" if s.tool_calls else "stop"
        if not played.body.get("stream"):
            text = "".join(s.tokens)
            choice = {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text}
            if s.tool_calls:
                choice["message"].update(content=text or None, tool_calls=[
                    {"id": f"call_{i}", "type": "function", "function": dict(c)} for i, c in enumerate(s.tool_calls)])
            self._json(200, {"id": "x", "model": "scripted", "choices": [{**choice, "finish_reason": finish}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        if s.garbage is not None:
            self.wfile.write(s.garbage)
            self.wfile.flush()
            return
        for i, tok in enumerate(s.tokens):
            if s.die_after is not None and i >= s.die_after:
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            choice = {"index": 0, "delta": {"content": tok}, "finish_reason": None} if chat else {"index": 0, "text": tok, "finish_reason": None}
            self.wfile.write(b"data: " + json.dumps({"id": "up-1", "model": "scripted", "choices": [choice]}).encode() + b"\n\n")
            self.wfile.flush()
            played.sent += 1
            if s.delay:
                time.sleep(s.delay)
        for i, c in enumerate(s.tool_calls):
            args = c["arguments"]
            cut = [0, len(args) // 3, 2 * len(args) // 3, len(args)]
            parts = [{"index": i, "id": f"call_{i}", "type": "function", "function": {"name": c["name"], "arguments": ""}}]
            parts += [{"index": i, "function": {"arguments": args[a:b]}} for a, b in zip(cut, cut[1:])]
            for part in parts:
                choice = {"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": None}
                self.wfile.write(b"data: " + json.dumps({"id": "up-1", "model": "scripted", "choices": [choice]}).encode() + b"\n\n")
                self.wfile.flush()
        end = {"index": 0, "delta": {}, "finish_reason": finish} if chat else {"index": 0, "text": "", "finish_reason": finish}
        self.wfile.write(b"data: " + json.dumps({"id": "up-1", "model": "scripted", "choices": [end]}).encode() + b"\n\ndata: [DONE]\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the load test opens 16 connections at once; the default backlog is 5
    script: Script
    seen: list[Played]


class Upstream:
    def __init__(self, server: _Server):
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"

    @property
    def script(self) -> Script:
        return self._server.script

    @script.setter
    def script(self, s: Script) -> None:
        self._server.script = s

    @property
    def seen(self) -> list[Played]:
        return self._server.seen

    @property
    def last(self) -> Played:
        return self._server.seen[-1]


@contextlib.contextmanager
def scripted_upstream() -> Iterator[Upstream]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.script, server.seen = Script(), []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield Upstream(server)
    finally:
        server.shutdown()
        server.server_close()


BREAD = (
    "Bread needs flour, water, salt and yeast. Mix them, knead the dough for ten minutes, and let it rise in a "
    "warm place until it doubles. Shape the loaf, let it rest again, then bake it in a hot oven for about forty minutes. "
)


def main() -> None:
    """`python -m tests.scripted_upstream --port P --tokens N --delay S`: serve one script until killed
    (bench/bench_serve.py runs it as a process of its own, so it competes with nobody's GIL)."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--delay", type=float, default=0.0)
    a = ap.parse_args()
    import re

    words = re.findall(r"\s*\S+", BREAD) * (a.tokens // 40 + 1)
    server = _Server(("127.0.0.1", a.port), _Handler)
    server.script = Script(tokens=words[: a.tokens], delay=a.delay)
    server.seen = []
    server.serve_forever()


if __name__ == "__main__":
    main()
