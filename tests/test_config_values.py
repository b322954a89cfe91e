"""`prism config set` checks a value before storing it; a configured value that fails later says
it came from the config (key and file); an empty --moderator or --policy is an error, not a default."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hub_server import write_classifier_folder  # noqa: E402

from prism_cli import audit, config  # noqa: E402
from prism_cli.build import check_config_value  # noqa: E402
from prism_cli.errors import InputError  # noqa: E402
from tests.conftest import one_error, prism as run_prism  # noqa: E402


def prism(home: Path, *args: str):
    return run_prism(*args, home=home, text=True, timeout=120)


def test_config_set_policy_refuses_unknown_names_and_suggests(home):
    line = one_error(prism(home, "config", "set", "policy", "strcit"))
    assert line.startswith("unknown policy 'strcit' (did you mean strict? available: default, minimal, strict")
    assert not (home / "config.yaml").exists()


def test_config_set_policy_file_must_validate_and_is_stored_absolute(home, tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\ncategories: 5\n")
    with pytest.raises(InputError, match=rf"^{bad}:2: categories: must be a list"):
        check_config_value("policy", str(bad))
    good = tmp_path / "good.yaml"
    good.write_text("name: g\nextends: strict\n")
    monkeypatch.chdir(tmp_path)
    assert check_config_value("policy", "good.yaml") == (str(good), None)


def test_config_set_moderator_must_resolve(home, tmp_path):
    with pytest.raises(InputError, match=r"^unknown moderator 'prism-defualt': .*did you mean prism-default\?"):
        check_config_value("moderator", "prism-defualt")
    with pytest.raises(InputError, match="unknown moderator 'nosuch'"):
        check_config_value("moderator", "cascade:rules,nosuch")
    with pytest.raises(InputError, match="expected cascade:FIRST,SECOND"):
        check_config_value("moderator", "cascade:rules")
    with pytest.raises(InputError, match="not a moderator"):
        check_config_value("moderator", str(tmp_path))
    value, note = check_config_value("moderator", "llama-guard-3-1b")
    assert value == "llama-guard-3-1b" and "not installed yet" in note
    assert check_config_value("moderator", "rules") == ("rules", None)
    folder = write_classifier_folder(tmp_path / "clf")
    assert check_config_value("moderator", str(folder)) == (str(folder.resolve()), None)


def test_booleans_parse_one_way_for_every_switch(home):
    for key in ("offline", "log"):
        for raw, want in (("yes", True), ("Off", False), ("1", True), ("false", False)):
            assert config.parse_value(key, raw) is want
        with pytest.raises(InputError, match=f"config key '{key}' takes true or false, got 'maybe'"):
            config.parse_value(key, "maybe")
    assert "true or false" in one_error(prism(home, "config", "set", "log", "maybe"))
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text("log: 'no'\noffline: 'on'\n")
    assert audit.enabled() is False and config.offline() is True
    (home / "config.yaml").write_text("log: maybe\n")
    with pytest.raises(InputError, match=rf"^config key 'log' in {home / 'config.yaml'} takes true or false, got 'maybe'$"):
        audit.enabled()


def test_config_set_log_false_stores_a_boolean(home):
    """`log` is a switch like `offline`: `config set log false` stores YAML false, not the string "false"."""
    import yaml

    for raw, want in (("false", False), ("on", True)):
        r = prism(home, "config", "set", "log", raw)
        assert r.returncode == 0, r.stderr
        assert yaml.safe_load((home / "config.yaml").read_text()) == {"log": want}
    assert prism(home, "config", "get", "log").stdout == "true\n"


def test_prism_offline_speaks_the_same_booleans(home, monkeypatch):
    for raw, want in (("on", True), ("YES", True), ("1", True), ("off", False), ("0", False), ("", False)):
        monkeypatch.setenv("PRISM_OFFLINE", raw)
        assert config.offline() is want, raw


def test_the_config_file_is_read_once_per_command(home, monkeypatch):
    """build_gate (policy and moderator) and the decision log's switch share one read of config.yaml."""
    from prism_cli.build import build_gate

    home.mkdir(parents=True)
    (home / "config.yaml").write_text("policy: strict\nmoderator: rules\nlog: false\n")
    reads = []
    parse = config._parse
    monkeypatch.setattr(config, "_parse", lambda path: reads.append(path) or parse(path))
    monkeypatch.setattr(config, "_cache", None)
    gate = build_gate()
    assert (gate.policy.name, gate.name) == ("strict", "rules")
    assert audit.enabled() is False
    assert reads == [home / "config.yaml"]
    config.set_value("log", True)  # a change is seen at once
    assert audit.enabled() is True and len(reads) == 2


def test_moderator_options_reach_the_backend(home, model, monkeypatch):
    """A typed ModeratorOptions, not **options: what a command passes arrives at the model runtime."""
    from prism_cli.build import ModeratorOptions, build_gate

    monkeypatch.delenv("PRISM_THREADS", raising=False)
    import os

    from prism_cli.moderators.classifier import MAX_WORKERS

    assert build_gate("default", str(model), ModeratorOptions(threads=1)).moderators[0].workers == 1
    assert build_gate("default", str(model)).moderators[0].workers == min(os.cpu_count() or 1, MAX_WORKERS)


def test_engine_and_download_errors_are_prism_errors():
    """One translation: cli.main prints any PrismError as one line with its exit code."""
    from prism_cli.download import DownloadError
    from prism_cli.engines.base import EngineError
    from prism_cli.errors import EXIT_USAGE, EngineFailed, PrismError

    for cls in (EngineError, DownloadError):
        assert issubclass(cls, PrismError) and cls.exit_code == EXIT_USAGE
    assert EngineFailed is EngineError


@pytest.mark.parametrize("content, code, expect", [
    ("policy: strcit\n", 2, "unknown policy 'strcit' (did you mean strict?"),
    ("moderator: nosuch\n", 3, "unknown moderator 'nosuch'"),
    ("moderator: ''\n", 2, "a moderator name or path is needed, got ''"),
])
def test_a_configured_value_that_fails_names_the_config(home, content, code, expect):
    home.mkdir(parents=True)
    (home / "config.yaml").write_text(content)
    line = one_error(prism(home, "check", "--text", "hello"), code)
    key = content.split(":")[0]
    assert line.startswith(expect) and line.endswith(f"(from config key '{key}' in {home / 'config.yaml'}; "
                                                     f"change it with `prism config set {key} ...`)"), line


def test_a_policy_moderator_that_fails_names_the_policy(home, tmp_path):
    pol = tmp_path / "p.yaml"
    pol.write_text("name: p\nextends: default\nmoderator: nosuch\n")
    line = one_error(prism(home, "check", "--policy", str(pol), "--text", "hello"), 3)
    assert line.startswith("unknown moderator 'nosuch'") and line.endswith(f"(from 'moderator' in {pol})")


@pytest.mark.parametrize("args, expect", [
    (["-m", ""], "--moderator needs a name, got an empty string"),
    (["--moderator", "  "], "--moderator needs a name, got an empty string"),
    (["-p", ""], "--policy needs a name or a YAML file, got an empty string"),
])
def test_empty_moderator_or_policy_is_an_error(home, args, expect):
    assert one_error(prism(home, "check", "--text", "hello", *args)).startswith(expect)
