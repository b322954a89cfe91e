"""Every test (and every prism subprocess it starts) runs with its own PRISM_HOME, never the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A PRISM_HOME of the test module's own, for subprocesses that should not share one."""
    return tmp_path_factory.mktemp("home")
