"""Every test (and every prism subprocess it starts) runs with its own PRISM_HOME, never the user's."""

from __future__ import annotations

import os

import pytest


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
