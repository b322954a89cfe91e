"""Shared test setup. No test touches the user's PRISM_HOME: the whole run gets a temporary one,
and a test that needs a fresh one of its own asks for the `home` fixture.

Helpers for test modules (import them: `from tests.conftest import prism, new_word`):
`prism` runs the CLI in a subprocess as a user would, `one_error` reads its one-line error,
`new_word` picks a word a model wrote on its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def prism(*args: object, home: Path | None = None, env: dict[str, str] | None = None, stdin: str | bytes | None = None,
          timeout: float = 300, text: bool | None = None, **kw: Any) -> subprocess.CompletedProcess:
    """`python -m prism_cli ARGS` in a subprocess: NO_COLOR set, PRISM_HOME=home when given (else the
    environment's), run from the repository root, output captured. Text mode when stdin is a str."""
    e = dict(os.environ if env is None else env)
    e["NO_COLOR"] = "1"
    if home is not None:
        e["PRISM_HOME"] = str(home)
    text = isinstance(stdin, str) if text is None else text
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("cwd", ROOT)
    return subprocess.run([sys.executable, "-m", "prism_cli", *map(str, args)], input=stdin if stdin is not None else
                          ("" if text else b""), text=text, env=e, timeout=timeout, **kw)


def one_error(r: subprocess.CompletedProcess, code: int = 2) -> str:
    """The message of a command that failed as prism promises: exit `code`, one `prism: error:` line, no traceback."""
    err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode("utf-8")
    assert r.returncode == code, (r.returncode, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prism: error: ") and "Traceback" not in err, err
    return lines[0][len("prism: error: "):]


def new_word(prompt: str, reply: str) -> str:
    """The first whole word (4+ letters) of a model's reply that the prompt does not contain, not at its
    very start: a word the model writes on its own, so a rule on it fires mid-stream, not on the prompt."""
    from prism_cli.moderators.rules import normalize

    seen = normalize(prompt)
    for m in re.finditer(r"(?<!\w)[^\W\d_]{4,}(?!\w)", normalize(reply)):
        if m.group() not in seen and m.start() > 10:
            return m.group()
    raise AssertionError(f"no usable word in the model's reply {reply!r}")


def shared_data_dir() -> Path:
    env = os.environ.get("PRISM_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """Tests marked shared_data read the public data sets beside the repo. A fresh clone of this repo
    alone has none: those tests are skipped with a reason there, and CI (which has the data) sets
    PRISM_REQUIRE_SHARED_DATA=1 so that a missing folder fails instead of skipping."""
    if (shared_data_dir() / "README.md").is_file():
        return
    if os.environ.get("PRISM_REQUIRE_SHARED_DATA") == "1":
        raise pytest.UsageError(f"PRISM_REQUIRE_SHARED_DATA=1 but {shared_data_dir()} has no data sets")
    skip = pytest.mark.skip(reason=f"needs the public data sets in {shared_data_dir()} (or set PRISM_DATA)")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _default_sigint():
    """Every test starts with Python's own Ctrl-C handler. A suite started as a background job (`cmd &`
    in a non-interactive shell) inherits SIGINT ignored, and so would every prism subprocess a test
    starts: its Ctrl-C tests would then see no interrupt at all."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(autouse=True, scope="session")
def _isolated_prism_home(tmp_path_factory):
    """One temporary PRISM_HOME for the whole run (tests and their subprocesses), never the user's."""
    old = os.environ.get("PRISM_HOME")
    os.environ["PRISM_HOME"] = str(tmp_path_factory.mktemp("prism-home"))
    yield
    if old is None:
        os.environ.pop("PRISM_HOME", None)
    else:
        os.environ["PRISM_HOME"] = old


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    """A real, tiny ONNX classifier folder (tests/onnx_fixture.py), built once per run."""
    from tests.onnx_fixture import build_classifier

    return build_classifier(tmp_path_factory.mktemp("clf") / "fixture")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """This test's own PRISM_HOME (not created yet), set in the environment: in-process code and every
    prism subprocess the test starts use it."""
    monkeypatch.setenv("PRISM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
