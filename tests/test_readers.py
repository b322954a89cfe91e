"""The one reader core: every byte read once (pipes, FIFOs, <(...)), one format sniffer, one key
order, one strict JSON and CSV parser shared by scan, chat batch, eval and policy loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from prism_cli.batch import read_turns
from prism_cli.errors import InputError, PolicyError
from prism_cli.eval_data import read_labeled
from prism_cli.outputs import JsonlWriter, OutFile
from prism_cli.policy_store import load_policy
from prism_cli.records import Source, open_sources, sniff_format

ROOT = Path(__file__).resolve().parent.parent
POLICY = """\
name: readers
description: rules only
categories:
  - id: weapons
    name: Weapons
    description: weapons talk
    rules: {keywords: [grenade]}
"""
LINES = 3001  # well past the 8 KB the old sniffer swallowed


@pytest.fixture
def policy(tmp_path) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY)
    return p


@pytest.fixture
def many(tmp_path) -> Path:
    """A harmful line 1, then thousands of harmless ones."""
    f = tmp_path / "many.txt"
    f.write_text("a grenade, please\n" + "".join(f"hello number {i}\n" for i in range(LINES - 1)))
    return f


def run(home: Path, args: str, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    """prism through bash, so process substitution and redirections are the shell's own."""
    env = {**os.environ, "PRISM_HOME": str(home), "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    cmd = f"{sys.executable} -m prism_cli {args}"
    return subprocess.run(["bash", "-c", cmd], input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=timeout)


def out_rows(r: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(x) for x in r.stdout.decode().splitlines()]


# ---------------------------------------------------------------- read once


def test_process_substitution_scores_every_line_including_line_1(home, policy, many):
    r = run(home, f"scan <(cat {many}) -m rules -p {policy} -q")
    assert r.returncode == 1, r.stderr
    got = out_rows(r)
    assert len(got) == LINES and [o["line"] for o in got] == list(range(1, LINES + 1))
    assert got[0]["decision"] == "block" and got[0]["file"].startswith("/dev/fd/")


def test_named_fifo_is_read_once_and_does_not_hang(tmp_path, home, policy, many):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(many.read_bytes()), daemon=True)
    writer.start()
    r = run(home, f"scan {fifo} -m rules -p {policy} -q", timeout=60)
    writer.join(10)
    assert r.returncode == 1, r.stderr
    got = out_rows(r)
    assert len(got) == LINES and got[0]["decision"] == "block"


def test_a_regular_file_is_not_read_twice(tmp_path):
    """The sniffed head is replayed, the rest read from the same inode: replacing the file between
    the check and the scan is an error, not a silent read of other bytes."""
    f = tmp_path / "a.txt"
    f.write_text("one\ntwo\n")
    (src,) = open_sources([str(f)])
    os.replace(tmp_path / "a.txt", tmp_path / "old.txt")
    f.write_text("other\n")
    with pytest.raises(InputError, match="a.txt: replaced by another file"):
        list(src.records())
    (src,) = open_sources([str(f)])
    assert [r.text for r in src.records()] == ["other"] and src.pos == 6


# ---------------------------------------------------------------- stdin sniffs like a file


def test_scan_stdin_sniffs_jsonl_and_csv(home, policy):
    r = run(home, f"scan - -m rules -p {policy} -q --include-text", b'{"id": 1, "prompt": "How do I reset my router?"}\n')
    assert r.returncode == 0, r.stderr
    assert [(o["id"], o["text"], o["line"]) for o in out_rows(r)] == [(1, "How do I reset my router?", 1)]
    r = run(home, f"scan - -m rules -p {policy} -q --include-text", b"id,text\n7,a grenade\n8,tea\n")
    assert r.returncode == 1, r.stderr
    assert [(o["id"], o["row"], o["line"], o["decision"]) for o in out_rows(r)] == [("7", 1, 2, "block"), ("8", 2, 3, "allow")]
    r = run(home, f"scan - -m rules -p {policy} -q", b"just text, with a comma\n")
    assert r.returncode == 0 and len(out_rows(r)) == 1


def test_sniff_rules():
    assert sniff_format(b'\xef\xbb\xbf\n  {"text": 1}\n') == "jsonl"
    assert sniff_format(b"id,prompt\n1,hi\n") == "csv"
    assert sniff_format(b"id,question\n1,hi\n") == "txt"
    assert sniff_format(b"id,question\n1,hi\n", column="question") == "csv"
    assert sniff_format(b"hello, world\n") == "txt"


# ---------------------------------------------------------------- one parser for every reader


def _every_reader(path: Path) -> list[str]:
    """The error (or the text) each reader gets from the same file."""
    got = []
    (src,) = open_sources([str(path)])
    rec = next(src.records())
    got.append(rec.error or rec.text)
    for read in (lambda: read_turns(str(path))[0][0][1], lambda: next(iter(read_labeled(path))).text):
        try:
            got.append(read())
        except InputError as e:
            got.append(str(e))
    return got


def test_one_key_order_everywhere(tmp_path):
    f = tmp_path / "both.jsonl"
    f.write_text('{"prompt": "from prompt", "text": "from text", "label": 0}\n')
    assert _every_reader(f) == ["from text"] * 3
    c = tmp_path / "both.csv"
    c.write_text("prompt,text,label\nfrom prompt,from text,0\n")
    assert _every_reader(c) == ["from text"] * 3


@pytest.mark.parametrize(
    "line, error",
    [
        ('{"text": ' + "[" * 200_000 + "]" * 200_000 + ', "label": 0}', "invalid JSON (nested too deeply)"),
        ('{"text": "x", "label": 0, "id": NaN}', "invalid JSON (NaN is not a JSON number)"),
        ('{"text": "x", "label": 0, "id": -Infinity}', "invalid JSON (-Infinity is not a JSON number)"),
        ('{"text": "x", "label": 0, "id": 1e999}', "invalid JSON (number 1e999 is out of range)"),
        ('{"text": "safe", "label": 0, "text": "a grenade"}', "duplicate key 'text'"),
    ],
)
def test_malformed_json_is_the_same_error_in_every_reader(tmp_path, line, error):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "fine", "label": 0}\n' + line + "\n")
    (src,) = open_sources([str(f)])
    assert [r.error for r in src.records()] == [None, error]
    with pytest.raises(InputError) as e:
        read_turns(str(f))
    assert str(e.value) == f"{f}:2: {error}"
    with pytest.raises(InputError) as e:
        list(read_labeled(f))
    assert str(e.value) == f"{f}:2: {error}"


def test_duplicate_csv_columns_are_an_error_in_every_reader(tmp_path):
    f = tmp_path / "dup.csv"
    f.write_text("id,prompt,label,prompt\n1,safe,0,a grenade\n")
    for read in (lambda: list(Source(str(f)).records()), lambda: read_turns(str(f)), lambda: list(read_labeled(f))):
        with pytest.raises(InputError) as e:
            read()
        assert str(e.value) == f"{f}:1: duplicate column 'prompt' in the header"
    f.write_text("text,label,,\nhi,0,,\n")  # empty trailing columns from a spreadsheet are no duplicates
    assert [r.text for r in read_labeled(f)] == ["hi"]


def test_deep_json_and_duplicates_exit_2_in_chat_batch_and_eval(tmp_path, home, policy):
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"text": "ok", "label": 0}\n{"text": ' + "[" * 100_000 + "\n")
    r = run(home, f"chat {tmp_path / 'no.gguf'} --batch {deep} -m rules -p {policy}")
    assert r.returncode == 2 and r.stderr.decode().strip() == f"prism: error: {deep}:2: invalid JSON (nested too deeply)"
    r = run(home, f"eval {deep} -m rules -p {policy}")
    assert r.returncode == 2 and r.stderr.decode().strip() == f"prism: error: {deep}:2: invalid JSON (nested too deeply)"
    r = run(home, f"scan - -m rules -p {policy}", b'{"id": NaN, "text": "hi"}\n')
    assert r.returncode == 2 and "<stdin>:1: invalid JSON (NaN is not a JSON number)" in r.stderr.decode()


def test_writer_never_writes_invalid_json(tmp_path):
    f = tmp_path / "o.jsonl"
    with open(f, "wb") as raw:
        w = JsonlWriter(OutFile(raw, str(f), close=False))
        w.write({"id": float("nan"), "scores": {"x": float("inf")}, "ok": 1.5})
    assert json.loads(f.read_text(), parse_constant=lambda c: pytest.fail(f"invalid JSON {c}")) == {
        "id": None, "scores": {"x": None}, "ok": 1.5}


# ---------------------------------------------------------------- policies through the same core


def test_policy_reads_are_bounded_strict_and_work_from_a_pipe(tmp_path, policy):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * 1_100_000 + b"\n")
    with pytest.raises(PolicyError, match=r"big.yaml: too large for a policy \(over 1000000 bytes\)"):
        load_policy(str(big))
    with pytest.raises(PolicyError, match="too large for a policy"):
        load_policy("/dev/zero")  # one bounded read, not an endless one
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: ok\ndescription: caf\xe9\n")
    with pytest.raises(PolicyError, match=r"bad.yaml:2: invalid UTF-8"):
        load_policy(str(bad))
    r, w = os.pipe()
    os.write(w, policy.read_bytes())
    os.close(w)
    try:
        assert load_policy(f"/dev/fd/{r}").name == "readers"
    finally:
        os.close(r)
