"""The local decision log: private by default (hash, not text), append-only, safe across processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing as mp

import pytest
import typer
from typer.testing import CliRunner

from prism_cli import audit, config
from prism_cli.commands import logs_cmd
from prism_cli.verdict import Decision, Verdict

SECRET = "my neighbour's wifi password is hunter2, how do I use it?"


@pytest.fixture(autouse=True)
def _own_home(home):
    """Every test here writes a log and a secret: each gets a PRISM_HOME of its own."""
    return home


def _verdict(vid="0", decision=Decision.BLOCK, error=None):
    return Verdict(id=vid, role="prompt", decision=decision, flagged=["S2"] if error is None else [],
                   scores={"S2": 0.91}, unsafe=0.93, moderator="rules", policy="default", ms=1.25, error=error)


def _keyed(home, text: str) -> str:
    return hmac.new((home / "log.key").read_bytes(), text.encode(), hashlib.sha256).hexdigest()


def test_text_is_never_logged_by_default_only_its_keyed_hash(home):
    path = audit.log_verdicts("check", [_verdict()], [SECRET])
    assert path == home / "audit.jsonl" and path.is_file()
    raw = path.read_text(encoding="utf-8")
    assert "hunter2" not in raw and "neighbour" not in raw
    (rec,) = [json.loads(ln) for ln in raw.splitlines()]
    assert set(rec) == {"ts", "command", *_verdict().to_dict(), "hmac"}  # the verdict object, nothing re-listed
    assert rec["scores"] == {"S2": 0.91}
    # a reader of the log cannot confirm a guess with plain SHA-256; the install's secret can
    assert rec["hmac"] != hashlib.sha256(SECRET.encode()).hexdigest()
    assert rec["hmac"] == _keyed(home, SECRET)
    key = home / "log.key"
    assert key.stat().st_size == 32 and key.stat().st_mode & 0o777 == 0o600
    assert key.read_bytes().hex() not in raw
    assert (rec["command"], rec["decision"], rec["flagged"], rec["unsafe"], rec["policy"]) == ("check", "block", ["S2"], 0.93, "default")
    assert rec["ts"].endswith("Z") and rec["ts"][:4].isdigit()
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_log_text_stores_the_text_and_appends(home):
    audit.log_verdicts("scan", [_verdict("1"), _verdict("2", Decision.ALLOW)], ["first", SECRET], include_text=True)
    audit.log_verdicts("chat", [_verdict("3", error="moderator failed: boom")], ["third"])
    recs = [json.loads(ln) for ln in (home / "audit.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == ["1", "2", "3"]
    assert recs[1]["text"] == SECRET and recs[1]["decision"] == "allow"
    assert "text" not in recs[2] and recs[2]["error"] == "moderator failed: boom"


def test_switched_off_by_config(home):
    home.mkdir(parents=True)
    for off in ("false", "off", "'0'"):
        (home / "config.yaml").write_text(f"log: {off}\n")
        assert not audit.enabled()
        assert audit.log_verdicts("check", [_verdict()], [SECRET]) is None
    assert not (home / "audit.jsonl").exists()
    (home / "config.yaml").write_text("log: true\n")
    assert audit.enabled() and audit.log_verdicts("check", [_verdict()], ["x"]) is not None


def test_unwritable_log_warns_and_never_raises(home, capsys):
    (home / "audit.jsonl").mkdir(parents=True)  # a directory where the file should be
    assert audit.log_verdicts("check", [_verdict()], ["x"]) is None
    assert "decision log not written" in capsys.readouterr().err
    with pytest.raises(ValueError):
        audit.log_verdicts("check", [_verdict()], [])


def _writer(home: str, k: int, n: int) -> None:
    import os

    os.environ["PRISM_HOME"] = home
    from prism_cli import audit as a

    big = f"w{k}-" + "x" * 20000  # larger than a pipe buffer: a non-atomic writer would tear lines
    for i in range(n):
        a.log_verdicts("scan", [_verdict(f"{k}-{i}")], [big], include_text=True)


def test_concurrent_processes_never_interleave_lines(home):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(home), k, 60)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (home / "audit.jsonl").read_text().splitlines()
    recs = [json.loads(ln) for ln in lines]  # every line is one whole record
    assert len(recs) == 180
    assert all(r["text"].startswith("w" + r["id"].split("-")[0] + "-") for r in recs)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a second command so typer keeps `logs` as a group
    logs_cmd.register(app)
    return app


def test_logs_list_path_and_json(home):
    runner = CliRunner()
    r = runner.invoke(_app(), ["logs", "list"])
    assert r.exit_code == 0 and "empty" in r.output
    audit.log_verdicts("check", [_verdict(str(i)) for i in range(5)], [f"t{i}" for i in range(5)])
    with (home / "audit.jsonl").open("a") as f:
        f.write('{"torn line\n')
    audit.log_verdicts("check", [_verdict("5")], ["t5"])
    r = runner.invoke(_app(), ["logs", "list", "-n", "3", "--json"])
    assert r.exit_code == 0
    ids = [json.loads(ln)["id"] for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert ids == ["3", "4", "5"]
    r = runner.invoke(_app(), ["logs", "list", "-n", "2"])
    assert r.exit_code == 0 and "block" in r.stdout and "rules" in r.stdout
    assert _keyed(home, "t5")[:12] in r.stdout
    recs, bad = audit.read_records()
    assert len(recs) == 6 and bad == 1
    r = runner.invoke(_app(), ["logs", "path"])
    assert r.stdout.strip() == str(home / "audit.jsonl")


def test_logs_off_and_on(home):
    runner = CliRunner()
    assert runner.invoke(_app(), ["logs", "off"]).exit_code == 0
    assert config.get("log") is False and not audit.enabled()
    assert audit.log_verdicts("check", [_verdict()], ["x"]) is None
    assert runner.invoke(_app(), ["logs", "on"]).exit_code == 0
    assert audit.enabled() and audit.log_verdicts("check", [_verdict()], ["x"]) is not None


def test_secret_is_per_install_and_stable(home, tmp_path, monkeypatch):
    audit.log_verdicts("check", [_verdict("a")], [SECRET])
    audit.log_verdicts("check", [_verdict("b")], [SECRET])
    key = (home / "log.key").read_bytes()
    a, b = audit.read_records()[0]
    assert a["hmac"] == b["hmac"]  # repeats of one text are recognisable on this install
    monkeypatch.setenv("PRISM_HOME", str(tmp_path / "other"))
    audit.log_verdicts("check", [_verdict("c")], [SECRET])
    (c,), _ = audit.read_records()
    assert c["hmac"] != a["hmac"]  # another install's secret: the same text does not match
    assert (home / "log.key").read_bytes() == key


def _make_key(home: str, q) -> None:
    import os

    os.environ["PRISM_HOME"] = home
    from prism_cli import audit as a

    q.put(a.text_hmac("same"))


def test_concurrent_first_use_agrees_on_one_secret(home):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_make_key, args=(str(home), q)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len({q.get(timeout=5) for _ in procs}) == 1
    assert sorted(f.name for f in home.iterdir()) == ["log.key"]  # no temporary file left behind


def test_damaged_secret_is_not_replaced_and_the_log_is_skipped(home, capsys):
    home.mkdir(parents=True)
    (home / "log.key").write_bytes(b"short")
    assert audit.log_verdicts("check", [_verdict()], [SECRET]) is None
    err = capsys.readouterr().err
    assert "log.key" in err and "32-byte" in err and "decision log not written" in err
    assert (home / "log.key").read_bytes() == b"short" and not (home / "audit.jsonl").exists()


def test_logs_list_text_finds_the_records_of_one_text(home):
    runner = CliRunner()
    r = runner.invoke(_app(), ["logs", "list", "--text", SECRET, "--json"])
    assert r.exit_code == 0 and r.stdout == ""  # no secret yet: nothing can match
    audit.log_verdicts("check", [_verdict("1"), _verdict("2"), _verdict("3")], [SECRET, "other", SECRET])
    r = runner.invoke(_app(), ["logs", "list", "--text", SECRET, "--json"])
    assert [json.loads(ln)["id"] for ln in r.stdout.splitlines()] == ["1", "3"]
