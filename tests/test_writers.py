"""The one atomic writer: special files written through, symlinks kept, modes kept, temp files
removed on every signal, a full disk or closed stdout one line and exit 2."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from prism_cli import config
from prism_cli.errors import InputError
from prism_cli.outputs import atomic_write, write_atomic
from tests.test_readers import out_rows, policy, run  # noqa: F401 - policy is a fixture

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def texts(tmp_path) -> Path:
    f = tmp_path / "in.txt"
    f.write_text("a grenade\n" + "tea\n" * 2000)
    return f


def _temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- special files are written through


def test_out_through_a_fifo_keeps_the_fifo(tmp_path, home, policy, texts):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = run(home, f"scan {texts} -m rules -p {policy} -q --out {fifo}", timeout=60)
    reader.join(10)
    assert r.returncode == 1, r.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and got[0].count(b"\n") == 2001
    assert _temps(tmp_path) == []


def test_out_through_stdout_links_writes_to_stdout_and_keeps_the_links(tmp_path, home, policy, texts):
    link = tmp_path / "fd1"
    link.symlink_to("/proc/self/fd/1")
    for out in (link, "/dev/stdout"):
        r = run(home, f"scan {texts} -m rules -p {policy} -q --out {out}")
        assert r.returncode == 1, r.stderr
        assert len(out_rows(r)) == 2001
    assert os.readlink(link) == "/proc/self/fd/1" and os.readlink("/dev/stdout") == "/proc/self/fd/1"
    assert _temps(tmp_path) == []


def test_a_symlink_to_a_file_replaces_the_target_and_keeps_link_and_mode(tmp_path, home, policy, texts):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target.name)
    r = run(home, f"scan {texts} -m rules -p {policy} -q --out {link}")
    assert r.returncode == 1, r.stderr
    assert link.is_symlink() and os.readlink(link) == "real.jsonl"
    assert target.read_text().count("\n") == 2001 and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _temps(tmp_path) == []


def test_modes_new_files_follow_the_umask_replaced_files_keep_theirs(tmp_path, monkeypatch):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640
    kept = tmp_path / "kept.txt"
    kept.write_text("a")
    kept.chmod(0o600)
    write_atomic(kept, "b")
    assert kept.read_text() == "b" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    monkeypatch.setenv("PRISM_HOME", str(tmp_path / "home"))  # config.yaml goes through the same writer
    path = config.set_value("policy", "strict")
    path.chmod(0o600)
    config.set_value("log", False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and config.load() == {"policy": "strict", "log": False}
    with pytest.raises(InputError, match="is a directory"):
        write_atomic(tmp_path, "x")


# ---------------------------------------------------------------- errors: one line, exit 2


def test_full_device_and_closed_stdout_are_one_line_exit_2(home, policy, texts):
    cases = {
        "--out /dev/full": "prism: error: --out /dev/full: cannot write (No space left on device)",
        "> /dev/full": "prism: error: <stdout>: cannot write (No space left on device)",
        ">&-": "prism: error: <stdout>: closed; redirect stdout (or use --out where a command has it)",
    }
    for tail, line in cases.items():
        r = run(home, f"scan {texts} -m rules -p {policy} -q {tail}")
        assert (r.returncode, r.stderr.decode().strip()) == (2, line)
    # every command: stdout's errors are the user's to fix (exit 2), never "internal error" (exit 3)
    for cmd, tail in [("check --text hi --json", "> /dev/full"), ("policy show default", "> /dev/full"), ("check --text hi --pass", ">&-")]:
        r = run(home, f"{cmd} -m rules -p {policy} -q {tail}" if cmd.startswith("check") else f"{cmd} {tail}")
        assert r.returncode == 2 and r.stderr.decode().startswith("prism: error: <stdout>: "), r.stderr
    assert os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def _file_size_limit(limit: int):  # noqa: ANN202 - a preexec_fn
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_write_that_fails_on_disk_leaves_the_old_file_and_no_temp(tmp_path, home, policy, texts):
    """RLIMIT_FSIZE makes the disk 'full' after 20 KB for this process only: a real failing write()."""
    out = tmp_path / "v.jsonl"
    out.write_text("previous\n")
    env = {**os.environ, "PRISM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "prism_cli", "scan", str(texts), "-m", "rules", "-p", str(policy), "-q", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, env=env, preexec_fn=_file_size_limit(20_000), timeout=120)
    assert (r.returncode, r.stderr.decode()) == (2, f"prism: error: --out {out}: cannot write (File too large)\n")
    assert out.read_text() == "previous\n" and _temps(tmp_path) == []


def test_atomic_write_failure_in_the_block_removes_the_temp(tmp_path):
    target = tmp_path / "t.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            assert len(_temps(tmp_path)) == 1
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_scan_removes_the_temp_file(tmp_path, home, policy, sig):
    big = tmp_path / "big.txt"
    big.write_text("a grenade, and texts with it\n" * 400_000)  # 11 MB: seconds of scanning
    out = tmp_path / "v.jsonl"
    env = {**os.environ, "PRISM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "prism_cli", "scan", str(big), "-m", "rules", "-p", str(policy), "-q", "--include-text", "--out", str(out)]
    # the signal at its default action in prism, as in a terminal: a run under nohup, or as a background
    # job, would inherit it ignored, and prism rightly keeps an ignored signal ignored
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, env=env, preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob(".v.jsonl.*.tmp")):  # the scan has started writing
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.02)
    time.sleep(0.3)
    assert p.poll() is None, "the scan ended before the signal: make the input larger"
    (tmp,) = tmp_path.glob(".v.jsonl.*.tmp")
    assert tmp.stat().st_size > 0  # texts were being written
    p.send_signal(sig)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == -sig, stderr
    assert not out.exists() and _temps(tmp_path) == []
