"""Test helper: a real `python -m llama_cpp.server` on 127.0.0.1 for the --server path.

    with llama_server(gguf_path) as base_url:      # "http://127.0.0.1:PORT"
        ...

Starts the server on a free port, waits until /v1/models answers, and stops it on exit
(terminate, then kill). Its output goes to a log file whose tail is in the error if it
never comes up. Use it from a module- or session-scoped fixture: it takes several seconds.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/v1/models")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def llama_server(
    gguf: str | os.PathLike[str],
    *,
    n_ctx: int = 2048,
    threads: int = 2,
    chat_format: str | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 120.0,
) -> Iterator[str]:
    """Run llama_cpp.server with this GGUF; yields its base URL (no /v1)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--n_threads_batch", str(threads),
        *(("--chat_format", chat_format) if chat_format else ()),
        *extra_args,
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="prism-llama-server-") as tmp:
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + startup_timeout
                while not _answers(port):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        tail = log_path.read_text(errors="replace")[-2000:]
                        why = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
                        raise RuntimeError(f"llama_cpp.server {why} before answering:\n{tail}")
                    time.sleep(0.25)
                yield f"http://127.0.0.1:{port}"
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
