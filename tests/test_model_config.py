"""`prism models add` checks a classifier's prism.json key by key, and against model.onnx's output,
before the model can decide anything; reserved names are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hub_server import CLASSIFIER_SECTION, write_classifier_folder  # noqa: E402

from prism_cli.errors import InputError  # noqa: E402
from prism_cli.sideload import add_local  # noqa: E402


def _folder(tmp_path: Path, **changes) -> Path:
    folder = write_classifier_folder(tmp_path / "clf")
    cfg = {"name": "tiny-guard", "version": "1", **CLASSIFIER_SECTION}
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (folder / "prism.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("changes, expect", [
    ({"category_map": {}, "unsafe": None}, "key 'category_map' is empty and 'unsafe' is not set: the model would score nothing"),
    ({"labels": ["benign", "malicious", "extra"]}, "key 'labels' lists 3 labels, but model.onnx output 'logits' has 2 columns"),
    ({"labels": ["malicious"]}, "key 'labels' lists 1 labels, but model.onnx output 'logits' has 2 columns"),
    ({"max_length": "abc"}, "key 'max_length' must be a positive integer (tokens), got 'abc'"),
    ({"max_length": 0}, "key 'max_length' must be a positive integer"),
    ({"max_length": True}, "key 'max_length' must be a positive integer"),
    ({"activation": "relu"}, "key 'activation' must be one of sigmoid, softmax, none, got 'relu'"),
    ({"category_map": {"evil": "S1"}}, "key 'category_map.evil' must name one of the labels (benign, malicious)"),
    ({"category_map": {"malicious": []}}, "key 'category_map.malicious' must be a category id or a list of them"),
    ({"unsafe": {"one_minus": "nice"}}, "key 'unsafe.one_minus' must name one of the labels"),
    ({"unsafe": 3}, "key 'unsafe' must name one of the labels"),
    ({"output": "probs"}, "key 'output' names no output of model.onnx (it has logits)"),
    ({"labels": ["benign", "benign"]}, "key 'labels' has a label twice"),
    ({"name": 7}, "key 'name' must be a non-empty string"),
    ({"preoptimized": "yes"}, "key 'preoptimized' must be true or false, got 'yes'"),
])
def test_add_refuses_a_bad_prism_json_naming_the_key(tmp_path, home, changes, expect):
    folder = _folder(tmp_path, **changes)
    with pytest.raises(InputError) as e:
        add_local(folder, "clf")
    assert str(e.value).startswith(f"{folder / 'prism.json'}: {expect}"), str(e.value)
    assert not (home / "models" / "clf").exists()


def test_symbolic_output_width_is_measured_on_the_model(tmp_path, home):
    import onnx

    folder = _folder(tmp_path, labels=["benign", "malicious", "extra"])
    model = onnx.load(str(folder / "model.onnx"))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "n_labels"
    onnx.save(model, str(folder / "model.onnx"))
    with pytest.raises(InputError, match="lists 3 labels, but model.onnx output 'logits' has 2 columns"):
        add_local(folder, "clf")
    (folder / "prism.json").write_text(json.dumps({"name": "t", **CLASSIFIER_SECTION}))
    assert add_local(folder, "clf").name == "clf"  # a right label count passes


def test_a_good_folder_is_added(tmp_path, home):
    assert add_local(_folder(tmp_path), "clf").kind == "classifier"


@pytest.mark.parametrize("name", ["rules", "profanity-check"])
def test_reserved_names_cannot_be_model_names(tmp_path, home, name):
    with pytest.raises(InputError, match=f"'{name}' is reserved"):
        add_local(_folder(tmp_path), name)
    assert not (home / "models" / name).exists()


@pytest.mark.parametrize("name", ["cascade:a,b", "a,b", "x:y", ""])
def test_names_with_spec_syntax_are_refused(tmp_path, home, name):
    with pytest.raises(InputError, match="bad model name"):
        add_local(_folder(tmp_path), name)


def test_models_add_cli_is_one_line_exit_2(tmp_path):
    folder = _folder(tmp_path, max_length="abc")
    env = {**os.environ, "PRISM_HOME": str(tmp_path / "h"), "NO_COLOR": "1"}
    r = subprocess.run([sys.executable, "-m", "prism_cli", "models", "add", str(folder), "--name", "clf"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"prism: error: {folder / 'prism.json'}: key 'max_length' must be a "
                                             "positive integer (tokens), got 'abc'"]
