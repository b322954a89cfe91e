"""`prism models list|add|rm|verify|path` and `prism config` through the real CLI (subprocesses)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hub_server import tiny_gguf, write_classifier_folder  # noqa: E402

from tests.conftest import one_error, prism as run_prism  # noqa: E402


@pytest.fixture()
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PRISM_", "HF_"))}
    e.update(PRISM_HOME=str(tmp_path / "home"), HF_HOME=str(tmp_path / "hf"), NO_COLOR="1")
    return e


def prism(env, *args):
    return run_prism(*args, env=env, text=True, timeout=120)


def test_list_shows_catalogue_installed_and_default(tmp_path, env):
    r = prism(env, "models", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in map(json.loads, r.stdout.splitlines())}  # JSONL, as every list command
    assert rows["prism-default"]["default"] and rows["prism-default"]["status"] in ("bundled", "missing")
    assert rows["llama-guard-3-1b"]["status"] == "available" and rows["llama-guard-3-1b"]["sha256"] == "published"
    assert rows["qwen3guard-gen-0.6b"]["sha256"] == "pinned on first download"
    src = tmp_path / "g.gguf"
    src.write_bytes(tiny_gguf(5000))
    assert prism(env, "models", "add", str(src), "--name", "mine", "--prompt-format", "llama-guard-3").returncode == 0
    assert prism(env, "config", "set", "moderator", "mine").returncode == 0
    rows = {row["name"]: row for row in map(json.loads, prism(env, "models", "list", "--json").stdout.splitlines())}
    assert rows["mine"]["status"] == "installed" and rows["mine"]["default"] and not rows["prism-default"]["default"]
    assert rows["mine"]["size_bytes"] == src.stat().st_size
    text = prism(env, "models", "list").stdout
    assert "* mine" in text and "pinned on first download" in text


def test_add_verify_path_rm_cycle(tmp_path, env):
    folder = write_classifier_folder(tmp_path / "clf")
    r = prism(env, "models", "add", str(folder), "--name", "clf")
    assert r.returncode == 0, r.stderr
    path = Path(prism(env, "models", "path", "clf").stdout.strip())
    assert path == tmp_path / "home" / "models" / "clf" and (path / "model.onnx").is_file()
    r = prism(env, "models", "verify")
    assert r.returncode == 0 and "ok clf (3 files)" in r.stdout
    (path / "tokenizer.json").write_text((path / "tokenizer.json").read_text().replace("hello", "HELLO"))
    r = prism(env, "models", "verify", "clf")
    assert r.returncode == 1 and "MISMATCH clf: tokenizer.json" in r.stdout
    assert prism(env, "models", "rm", "clf").returncode == 0
    assert not path.exists()
    assert "not installed" in one_error(prism(env, "models", "path", "clf"))
    assert "bundled" in one_error(prism(env, "models", "rm", "prism-default"))


@pytest.mark.parametrize("kind", ["truncated", "not-gguf", "missing"])
def test_add_bad_input_is_one_line(tmp_path, env, kind):
    src = tmp_path / "x.gguf"
    if kind == "truncated":
        src.write_bytes(tiny_gguf(5000)[:3000])
    elif kind == "not-gguf":
        src.write_bytes(b"PK\x03\x04 a zip file, not a model")
    line = one_error(prism(env, "models", "add", str(src), "--name", "x"))
    assert str(src) in line
    assert {"truncated": "truncated GGUF", "not-gguf": "not a GGUF", "missing": "no such file"}[kind] in line
    assert not (tmp_path / "home" / "models" / "x").exists()


def test_unknown_model_and_bad_name_are_one_line(env):
    assert "unknown model 'nope'" in one_error(prism(env, "models", "pull", "nope"))
    assert "bad model name" in one_error(prism(env, "models", "rm", "../../etc"))


def test_config_get_set_unset_list(env, tmp_path):
    assert prism(env, "config", "get", "offline").stdout.strip() == ""
    assert prism(env, "config", "set", "offline", "yes").returncode == 0
    assert prism(env, "config", "get", "offline").stdout.strip() == "true"
    assert "true or false" in one_error(prism(env, "config", "set", "offline", "perhaps"))
    assert "unknown config key 'colour'" in one_error(prism(env, "config", "set", "colour", "red"))
    r = prism(env, "config", "set", "moderator", "llama-guard-3-1b")
    assert r.returncode == 0 and "not installed yet" in r.stderr
    listing = prism(env, "config", "list").stdout
    assert "moderator = llama-guard-3-1b" in listing and "offline = true" in listing
    # the offline switch in config forbids pulls without --offline on the command line
    assert "offline mode forbids" in one_error(prism(env, "models", "pull", "llama-guard-3-1b"))
    assert prism(env, "config", "unset", "offline").returncode == 0
    assert prism(env, "config", "get", "offline").stdout.strip() == ""
    assert "moderator: llama-guard-3-1b" in (tmp_path / "home" / "config.yaml").read_text()
