"""An OpenAI-compatible chat server (llama.cpp server, `python -m llama_cpp.server`, Ollama, ...).

Streams /v1/chat/completions over SSE with the standard library only. The reply iterator owns
the HTTP connection: closing it (or dropping it) closes the socket, which is how these
servers learn to stop generating. Every failure is one EngineError line naming the server.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from typing import Any, Iterator, Sequence

from prism_cli.engines.base import ChatMessage, EngineError

MAX_LINE = 1 << 20
PROBE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0


def parse_base_url(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path prefix) from 'http://host:port[/prefix][/v1]'; ValueError if unusable."""
    raw = url.strip()
    text = raw if "://" in raw else f"http://{raw}"
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"server URL {url!r}: unsupported scheme {parts.scheme!r} (use http:// or https://)")
    if not parts.hostname:
        raise ValueError(f"server URL {url!r}: no host name")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"server URL {url!r}: bad port") from None
    if parts.query or parts.fragment:
        raise ValueError(f"server URL {url!r}: remove the query or fragment")
    path = parts.path.rstrip("/")
    for suffix in ("/v1/chat/completions", "/chat/completions", "/v1"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return parts.scheme, parts.hostname, port, path


def _error_message(raw: bytes) -> str:
    """The server's own words from an error body (OpenAI, FastAPI or plain text shapes)."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return (text.splitlines() or [""])[0][:200]
    for key in ("error", "detail", "message"):
        val = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(val, dict):
            val = val.get("message") or val
        if val:
            return (val if isinstance(val, str) else json.dumps(val))[:200]
    return text[:200]


class HttpEngine:
    """Engine protocol over HTTP. `n_ctx` is probed once (llama.cpp /props, /v1/models); 0 if unknown."""

    template_hint = (
        "the server's chat template probably does not fit its model; restart the server with the model's own "
        "template (llama-server: --jinja; python -m llama_cpp.server: --chat_format, e.g. gemma or chatml) "
        "or serve an instruct model"
    )

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, timeout: float = 300.0):
        self._scheme, self._host, self._port, self._prefix = parse_base_url(base_url)
        default_port = 443 if self._scheme == "https" else 80
        self.base_url = f"{self._scheme}://{self._host}:{self._port or default_port}{self._prefix}"
        self.model = model
        self.name = model or self.base_url
        self.api_key = api_key or os.environ.get("PRISM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout
        self._n_ctx: int | None = None
        self._model_probed = model is not None
        self._counter: str | None = None  # "llama.cpp" | "extras" | "approx", found on first use
        self.pieces_received = 0
        self.last_stats: dict[str, Any] = {}

    # --- plumbing -------------------------------------------------------------------------

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def _open(self, method: str, path: str, body: Any = None, timeout: float | None = None):
        """Send one request; (connection, response) or one-line EngineError for transport failures."""
        wait = timeout or self.timeout
        conn = self._connect(min(wait, CONNECT_TIMEOUT))
        headers = {"Accept": "text/event-stream, application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            conn.connect()
            conn.sock.settimeout(wait)  # connecting is quick or hopeless; a reply may take long
            conn.request(method, self._prefix + path, body=data, headers=headers)
            return conn, conn.getresponse()
        except ConnectionRefusedError:
            conn.close()
            raise EngineError(f"cannot reach {self.base_url}: connection refused (is the server running?)") from None
        except (socket.timeout, TimeoutError):
            conn.close()
            raise EngineError(f"{self.base_url} did not answer in time") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise EngineError(f"cannot reach {self.base_url}: {e or type(e).__name__}") from None

    def _json(self, method: str, path: str, body: Any = None, timeout: float = PROBE_TIMEOUT) -> tuple[int, Any]:
        """A small request/response exchange; (status, parsed JSON or None)."""
        conn, resp = self._open(method, path, body, timeout)
        try:
            raw = resp.read(MAX_LINE)
        except (OSError, http.client.HTTPException) as e:
            raise EngineError(f"{self.base_url}{path}: reply cut off ({e or type(e).__name__})") from None
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, None

    def _http_error(self, path: str, resp: http.client.HTTPResponse) -> EngineError:
        try:
            raw = resp.read(65536)
        except (OSError, http.client.HTTPException):
            raw = b""
        msg = _error_message(raw)
        return EngineError(f"{self.base_url}{path}: HTTP {resp.status} {resp.reason}" + (f": {msg}" if msg else ""))

    # --- the protocol ----------------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Send the request now (connection and HTTP errors raise here); iterate for the reply."""
        body: dict[str, Any] = {
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if seed is not None:
            body["seed"] = seed
        model = self._model_name()
        if model:
            body["model"] = model
        path = "/v1/chat/completions"
        conn, resp = self._open("POST", path, body)
        if resp.status >= 400:
            err = self._http_error(path, resp)
            conn.close()
            raise err
        self.last_stats = {"finish_reason": None, "pieces": 0}
        return SseReply(self, conn, resp)

    def _model_name(self) -> str | None:
        """The model to ask for: the user's, else the server's first (Ollama needs one)."""
        if not self._model_probed:
            self._model_probed = True
            try:
                status, obj = self._json("GET", "/v1/models")
                data = obj.get("data") if status == 200 and isinstance(obj, dict) else None
                if data and isinstance(data[0], dict) and isinstance(data[0].get("id"), str):
                    self.model = data[0]["id"]
            except EngineError:
                pass
        return self.model

    @property
    def n_ctx(self) -> int:
        if self._n_ctx is None:
            self._n_ctx = self._probe_n_ctx()
        return self._n_ctx

    def _probe_n_ctx(self) -> int:
        try:
            status, props = self._json("GET", "/props")
            if status == 200 and isinstance(props, dict):
                settings = props.get("default_generation_settings")
                for src in (settings if isinstance(settings, dict) else {}, props):
                    if isinstance(src.get("n_ctx"), int) and src["n_ctx"] > 0:
                        return src["n_ctx"]
            status, models = self._json("GET", "/v1/models")
            data = models.get("data") if status == 200 and isinstance(models, dict) else None
            if data and isinstance(data[0], dict):
                for key in ("max_model_len", "context_length", "n_ctx"):
                    if isinstance(data[0].get(key), int) and data[0][key] > 0:
                        return data[0][key]
        except EngineError:
            pass
        return 0

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Exact with a llama.cpp server (/apply-template + /tokenize), close with llama_cpp.server
        (/extras/tokenize/count plus a few tokens per turn), else about 4 characters a token."""
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        flat = "".join(f"{m['role']}\n{m['content']}\n" for m in msgs)
        overhead = 4 * len(msgs) + 3
        for way in ("llama.cpp", "extras") if self._counter is None else (self._counter,):
            n = self._count_llamacpp(msgs) if way == "llama.cpp" else self._count_extras(flat, overhead)
            if n is not None:
                self._counter = way
                return n
        self._counter = "approx"
        return (len(flat) + 3) // 4 + overhead

    def _count_llamacpp(self, msgs: list[dict[str, str]]) -> int | None:
        status, tpl = self._json("POST", "/apply-template", {"messages": msgs})
        if status != 200 or not isinstance(tpl, dict) or not isinstance(tpl.get("prompt"), str):
            return None
        status, tok = self._json("POST", "/tokenize", {"content": tpl["prompt"], "add_special": True})
        ok = status == 200 and isinstance(tok, dict) and isinstance(tok.get("tokens"), list)
        return len(tok["tokens"]) if ok else None

    def _count_extras(self, flat: str, overhead: int) -> int | None:
        status, obj = self._json("POST", "/extras/tokenize/count", {"input": flat})
        ok = status == 200 and isinstance(obj, dict) and isinstance(obj.get("count"), int)
        return obj["count"] + overhead if ok else None

    def close(self) -> None:
        """Nothing is held between requests (each reply owns its connection)."""


class SseReply:
    """Iterator over the reply's text deltas; owns the connection and closes it on .close()."""

    def __init__(self, engine: HttpEngine, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse):
        self._engine, self._conn, self._resp = engine, conn, resp
        self._finished = False
        self._events = 0
        self.closed = False
        ctype = (resp.getheader("Content-Type") or "").lower()
        self._whole = ctype.startswith("application/json")  # a server that ignored stream=true

    def __iter__(self) -> "SseReply":
        return self

    def __next__(self) -> str:
        while not self.closed:
            data = self._whole_reply() if self._whole else self._read_event()
            if data is None:
                self.close()
                if not self._finished and not self._events:
                    raise EngineError(
                        f"{self._engine.base_url} ended the stream without a reply "
                        "(see the server's log; the conversation may not fit its context window)"
                    )
                if not self._finished:
                    raise EngineError(f"{self._engine.base_url} closed the stream before the reply was complete")
                break
            self._events += 1
            if data == "[DONE]":
                self._finished = True
                self.close()
                break
            piece = self._delta(data)
            if piece:
                self._engine.pieces_received += 1
                self._engine.last_stats["pieces"] = self._engine.last_stats.get("pieces", 0) + 1
                return piece
        raise StopIteration

    def _fail(self, why: str) -> EngineError:
        self.close()
        return EngineError(f"malformed stream from {self._engine.base_url}: {why}")

    def _whole_reply(self) -> str | None:
        if self._finished:
            return None
        raw = self._resp.read()
        self._finished = True
        try:
            msg = json.loads(raw)["choices"][0]["message"]
            return json.dumps({"choices": [{"delta": {"content": msg.get("content") or ""}, "finish_reason": "stop"}]})
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise self._fail("a JSON reply without choices[0].message") from None

    def _read_event(self) -> str | None:
        """The data of the next SSE event, or None at end of stream."""
        lines: list[str] = []
        while True:
            try:
                raw = self._resp.readline(MAX_LINE)
            except (socket.timeout, TimeoutError):
                self.close()
                raise EngineError(f"{self._engine.base_url} sent nothing for {self._engine.timeout:g}s") from None
            except (OSError, http.client.HTTPException, ValueError) as e:
                if self.closed:
                    return None
                self.close()
                raise EngineError(f"{self._engine.base_url}: connection lost ({e or type(e).__name__})") from None
            if not raw:
                return "\n".join(lines) if lines else None
            if not raw.endswith(b"\n") and len(raw) >= MAX_LINE:
                raise self._fail(f"a line longer than {MAX_LINE} bytes")
            try:
                line = raw.rstrip(b"\r\n").decode("utf-8")
            except UnicodeDecodeError:
                raise self._fail("invalid UTF-8") from None
            if not line:
                if lines:
                    return "\n".join(lines)
                continue
            if line.startswith(":"):
                continue  # comment / keep-alive ping
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                lines.append(value)
            elif field == "error":  # llama.cpp server reports failures this way
                self.close()
                raise EngineError(f"{self._engine.base_url} failed mid-stream: {_error_message(value.encode())}")
            elif field not in ("event", "id", "retry"):
                raise self._fail(f"unexpected line {line[:80]!r}")

    def _delta(self, data: str) -> str:
        try:
            obj = json.loads(data)
        except ValueError:
            raise self._fail(f"event data is not JSON: {data[:80]!r}") from None
        if not isinstance(obj, dict):
            raise self._fail(f"event data is not an object: {data[:80]!r}")
        if obj.get("error"):
            self.close()
            raise EngineError(f"{self._engine.base_url} failed mid-stream: {_error_message(data.encode())}")
        choices = obj.get("choices")
        if not isinstance(choices, list):
            raise self._fail(f"event without choices: {data[:80]!r}")
        if not choices:
            return ""  # e.g. a final usage-only chunk
        choice = choices[0] if isinstance(choices[0], dict) else {}
        if choice.get("finish_reason"):
            self._finished = True
            self._engine.last_stats["finish_reason"] = choice["finish_reason"]
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        if content is not None and not isinstance(content, str):
            raise self._fail(f"delta content is not text: {data[:80]!r}")
        return content or ""

    def close(self) -> None:
        """Drop the connection at once: the server sees the client leave and stops generating."""
        if not self.closed:
            self.closed = True
            try:
                self._resp.close()
            finally:
                self._conn.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
