"""`prism serve` as a process: refusals before binding, and SIGTERM letting open streams finish (or
cutting them after --grace) before a clean exit. Never a key in its output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.llama_server import free_port
from tests.scripted_upstream import Script, scripted_upstream

POLICY = """\
name: serve-cli
categories:
  - id: S1
    name: Violent Crimes
    description: a word this test forbids
    rules: {keywords: [dynamite]}
"""


def prism(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prism_cli", "serve", *args], capture_output=True, text=True, timeout=60, **kw)


def test_refusals_are_one_line_and_exit_2():
    r = prism()
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--upstream" in r.stderr
    r = prism("--upstream", "http://127.0.0.1:9", "--host", "0.0.0.0", env={**os.environ, "PRISM_API_KEY": ""})
    assert r.returncode == 2 and "--api-key" in r.stderr and "Traceback" not in r.stderr
    r = prism("--upstream", "ftp://x")
    assert r.returncode == 2 and "--upstream" in r.stderr and "scheme" in r.stderr
    r = prism("--upstream", "http://127.0.0.1:9", "--slots", "0")
    assert r.returncode == 2 and "--slots" in r.stderr


@pytest.fixture
def policy_file(tmp_path):
    p = tmp_path / "serve-cli.yaml"
    p.write_text(POLICY)
    return str(p)


def start(upstream: str, policy_file: str, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PRISM_API_KEY": "tops3cret-key"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prism_cli", "serve", "--upstream", upstream, "--port", str(port),
         "--policy", policy_file, "--moderator", "rules", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"prism serve did not start: {proc.communicate()[1]}")
        time.sleep(0.1)


@pytest.mark.parametrize("grace,finishes", [(10.0, True), (0.5, False)])
def test_sigterm_finishes_or_cuts_open_streams_then_exits_cleanly(policy_file, grace, finishes):
    with scripted_upstream() as up:
        up.script = Script(tokens=[f" w{i}" for i in range(40)], delay=0.05)  # a 2 s reply
        proc, url = start(up.url, policy_file, "--grace", str(grace))
        try:
            body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
            headers = {"Authorization": "Bearer tops3cret-key"}
            got = b""
            with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=headers, timeout=30) as r:
                assert r.status_code == 200
                t0 = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                try:
                    for chunk in r.iter_bytes():
                        got += chunk
                except httpx.HTTPError:
                    pass
            assert proc.wait(timeout=20) == 0
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
        _, err = proc.communicate()
        assert b"data: [DONE]" in got if finishes else b"data: [DONE]" not in got
        assert (took < 5) if not finishes else b"w39" in got
        assert up.last.done.wait(10) and (up.last.aborted != finishes)  # a cut stream hung up on the upstream too
        assert "tops3cret" not in err and "serving http://127.0.0.1" in err
