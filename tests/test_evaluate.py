"""prism eval's metrics (hand-computed), its data reader, category mapping and the profanity baseline."""

from __future__ import annotations

import json
import random
import sys

import pytest

from prism_cli.errors import InputError, ModeratorError
from prism_cli.eval_data import LabeledRow, parse_label, read_labeled
from prism_cli.evaluate import average_precision, evaluate, map_category, metrics, parse_map
from prism_cli.gate import Gate
from prism_cli.moderators.rules import RulesModerator
from prism_cli.policy import parse_policy

# ---------------------------------------------------------------- average precision


def test_ap_step_sum_differs_from_trapezoid():
    # Ranked: 0.9 unsafe, 0.8 safe, 0.7 unsafe (2 positives).
    # Steps: t=0.9 -> P=1, R=.5; t=0.8 -> P=.5, R=.5; t=0.7 -> P=2/3, R=1.
    # Step sum (sklearn): .5*1 + 0*.5 + .5*(2/3) = 5/6 = 0.8333.
    # Trapezoid over (R,P) = (0,1),(.5,1),(.5,.5),(1,2/3): .5*1 + 0 + .5*(.5+2/3)/2 = 0.7917.
    assert average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(5 / 6)
    assert average_precision([1, 0, 1], [0.9, 0.8, 0.7]) != pytest.approx(0.7916667, abs=1e-3)


def test_ap_ties_enter_together():
    # 0.9 unsafe | 0.5 unsafe, 0.5 safe (tied) | 0.1 safe.
    # t=0.9: P=1, R=.5.  t=0.5 (both tied rows at once): TP=2, FP=1 -> P=2/3, R=1.
    # AP = .5*1 + .5*(2/3) = 5/6, whichever order the tied rows come in.
    assert average_precision([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(5 / 6)
    assert average_precision([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(5 / 6)
    # Everything tied: one step, R 0 -> 1 at P = 2/4.
    assert average_precision([1, 0, 1, 0], [0.3] * 4) == pytest.approx(0.5)
    # A tie that a positive-first sort would score 1.0: t=0.5 has TP=1, FP=1 -> AP = 0.5.
    assert average_precision([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


def test_ap_edges():
    assert average_precision([0, 0], [0.1, 0.9]) is None  # no positives: undefined
    assert average_precision([1, 1], [0.1, 0.9]) == pytest.approx(1.0)  # no negatives: P is always 1
    assert average_precision([1, 0], [0.9, 0.1]) == pytest.approx(1.0)
    # Worst ranking: 0.9 safe, 0.8 safe, 0.1 unsafe -> one step at P = 1/3.
    assert average_precision([0, 0, 1], [0.9, 0.8, 0.1]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        average_precision([1], [0.1, 0.2])


def test_ap_matches_sklearn_on_random_tied_scores():
    from sklearn.metrics import average_precision_score

    rng = random.Random(7)
    for _ in range(25):
        n = rng.randint(5, 60)
        labels = [rng.randint(0, 1) for _ in range(n)]
        labels[0] = 1
        scores = [round(rng.random(), 1) for _ in range(n)]  # one decimal: many ties
        assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores))


# ---------------------------------------------------------------- threshold metrics


def test_metrics_hand_computed():
    # y:       1  1  1  0  0  0  0
    # flagged: T  T  F  T  F  F  F   -> TP=2 FN=1 FP=1 TN=3
    m = metrics([1, 1, 1, 0, 0, 0, 0], [True, True, False, True, False, False, False], [0.9, 0.8, 0.2, 0.7, 0.3, 0.1, 0.0])
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (2, 1, 1, 3)
    assert (m["n"], m["positives"], m["negatives"]) == (7, 3, 4)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 4)
    # Ranked 0.9+ 0.8+ 0.7- 0.3- 0.2+ ...: AP = 1/3*1 + 1/3*1 + 1/3*(3/5) = 0.8667
    assert m["ap"] == pytest.approx(1 / 3 + 1 / 3 + 1 / 5)
    assert m["auprc"] == m["ap"]


def test_metrics_undefined_are_none_not_zero():
    m = metrics([1, 1], [False, False], [0.1, 0.2])
    assert m["precision"] is None and m["fpr"] is None
    assert m["recall"] == 0.0 and m["f1"] == 0.0
    m = metrics([0, 0], [True, False], [0.9, 0.1])
    assert m["recall"] is None and m["ap"] is None and m["fpr"] == pytest.approx(0.5) and m["precision"] == 0.0


# ---------------------------------------------------------------- reading labeled data


def _write(tmp_path, name, content, mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def test_jsonl_label_variants_and_categories(tmp_path):
    labels = [1, 0, "1", "0", "unsafe", "SAFE", "harmful", " benign ", True, False, "true", "False", 1.0]
    lines = [json.dumps({"text": f"t{i}", "label": lab, "category": "hate" if i % 2 else None}) for i, lab in enumerate(labels)]
    p = _write(tmp_path, "d.jsonl", "\ufeff" + "\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")
    rows = list(read_labeled(p))
    assert [r.label for r in rows] == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    assert [r.category for r in rows[:3]] == [None, "hate", None]
    assert rows[3].where == f"{p}:5"  # the blank line still counts
    assert list(read_labeled(p, limit=2)) == rows[:2]


def test_jsonl_prompt_key_accepted(tmp_path):
    p = _write(tmp_path, "d.ndjson", '{"prompt": "hi", "label": 0}\n')
    assert list(read_labeled(p)) == [LabeledRow("hi", 0, None, f"{p}:1")]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"text": "x", "label": 2}', ":2: label: expected 0/1"),
        ('{"text": "x", "label": "maybe"}', ":2: label:"),
        ('{"text": "x"}', ":2: no 'label' field"),
        ('{"label": 1}', ":2: no 'text' or 'prompt' field"),
        ('{"text": "  ", "label": 1}', ":2: empty text"),
        ('{"text": 5, "label": 1}', ":2: field 'text' is a number, expected a string"),
        ('{"text": "x", "label": 1, "category": [1]}', ":2: category:"),
        ('["x", 1]', ":2: expected a JSON object"),
        ('{"text": "x", "label": 1', ":2: invalid JSON"),
    ],
)
def test_jsonl_malformed_rows_name_file_and_line(tmp_path, line, message):
    p = _write(tmp_path, "bad.jsonl", '{"text": "ok", "label": 0}\n' + line + "\n")
    rows = read_labeled(p)
    assert next(rows).text == "ok"  # streaming: the good row comes out before the error
    with pytest.raises(InputError) as e:
        next(rows)
    assert str(e.value).startswith(f"{p}{message}")


def test_invalid_utf8_and_nul_bytes(tmp_path):
    p = _write(tmp_path, "u.jsonl", b'{"text": "a", "label": 0}\n{"text": "\xff", "label": 1}\n', "wb")
    with pytest.raises(InputError, match=r"u\.jsonl:2: invalid UTF-8"):
        list(read_labeled(p))
    p = _write(tmp_path, "n.csv", b"text,label\nab\0c,1\n", "wb")
    with pytest.raises(InputError, match=r"n\.csv:2: binary file"):
        list(read_labeled(p))


def test_csv_quoted_multiline_and_variants(tmp_path):
    p = _write(tmp_path, "d.csv", 'id,text,label,category\n1,"line one\nline two",unsafe,weapons\n2,"a, b",0,\n\n3,hi,Harmful,hate\n')
    rows = list(read_labeled(p))
    assert [(r.text, r.label, r.category) for r in rows] == [
        ("line one\nline two", 1, "weapons"),
        ("a, b", 0, None),
        ("hi", 1, "hate"),
    ]
    assert [r.where.rsplit(":", 1)[1] for r in rows] == ["2", "4", "6"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("text,label\nok,0\nbad,7\n", ":3: label:"),
        ("text,label\nok,0\ntoo,many,fields\n", ":3: row has 3 fields, the header has 2"),
        ('text,label\nok,0\n"unclosed,1\n', ":3: malformed CSV"),
        ("words,label\nok,0\n", ":1: no 'text' or 'prompt' column in the header"),
        ("", ": no texts (empty file)"),
    ],
)
def test_csv_malformed(tmp_path, content, message):
    p = _write(tmp_path, "bad.csv", content)
    with pytest.raises(InputError) as e:
        list(read_labeled(p))
    assert str(e.value).startswith(f"{p}{message}")


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unknown format"):
        read_labeled(tmp_path / "x.txt")
    with pytest.raises(InputError, match="no such file"):
        read_labeled(tmp_path / "x.jsonl")


def test_parse_label_direct():
    assert parse_label("Unsafe", "f:1") == 1 and parse_label(0, "f:1") == 0
    with pytest.raises(InputError, match="f:9: label"):
        parse_label(None, "f:9")


# ---------------------------------------------------------------- evaluate() over a real gate

POLICY = """
name: evaltest
description: rules only, so every score is exactly 0 or 1
categories:
  - id: S1
    name: Violent Crimes
    description: violence
    rules: {keywords: [stab]}
  - id: insult
    name: Insults
    description: insults
    action: warn
    rules: {keywords: [idiot]}
  - id: spam
    name: Spam
    description: spam
    action: log
    rules: {keywords: [casino]}
"""


def _rows(data):
    return [LabeledRow(t, y, c, f"mem:{i + 1}") for i, (t, y, c) in enumerate(data)]


def test_evaluate_per_category_rules():
    pol = parse_policy(POLICY)
    gate = Gate(pol, [RulesModerator(pol)])
    rows = _rows([
        ("I will stab him", 1, "violent crimes"),  # mapped by name; blocked: TP
        ("hurt someone badly", 1, "violent crimes"),  # missed: FN
        ("you idiot", 1, "insults"),  # warn counts as flagged: TP
        ("stab the potato", 0, "violent crimes"),  # look-alike of the same category, blocked: FP
        ("hello", 0, None),
        ("best casino bonus", 0, None),  # action log: scored 1 but not flagged
    ])
    rep = evaluate(rows, [gate], role="prompt", batch_size=4)
    (mod,) = rep["moderators"]
    o = mod["overall"]
    assert (o["tp"], o["fp"], o["fn"], o["tn"]) == (2, 1, 1, 2)
    # unsafe = max rule score: 1 for stab, idiot, potato, casino. One step at P=2/4 (R=2/3), then P=3/6 (R=1).
    assert o["ap"] == pytest.approx(2 / 3 * 0.5 + 1 / 3 * 0.5)
    v = mod["categories"]["violent crimes"]
    assert (v["policy_category"], v["score"], v["negatives_from"]) == ("S1", "S1", "category")
    assert (v["n"], v["positives"], v["tp"], v["fp"]) == (3, 2, 1, 1)
    assert v["precision"] == 0.5 and v["recall"] == 0.5 and v["fpr"] == 1.0
    # S1 scores: stab 1 (unsafe), potato 1 (safe), hurt 0 (unsafe): AP = .5*.5 + .5*(2/3)
    assert v["ap"] == pytest.approx(0.25 + 1 / 3)
    i = mod["categories"]["insults"]
    # No safe "insults" rows: negatives are all 3 safe rows, ranked by the insult score (0 for all).
    assert (i["negatives_from"], i["score"], i["n"], i["fp"]) == ("all_safe", "insult", 4, 1)
    assert i["ap"] == 1.0 and i["recall"] == 1.0 and i["fpr"] == pytest.approx(1 / 3)


def test_evaluate_unmapped_category_uses_overall_and_map_overrides():
    pol = parse_policy(POLICY)
    gate = Gate(pol, [RulesModerator(pol)])
    rows = _rows([("you idiot", 1, "abuse"), ("casino night", 0, None), ("hi", 0, None)])
    rep = evaluate(rows, [gate])
    a = rep["moderators"][0]["categories"]["abuse"]
    assert (a["policy_category"], a["score"]) == (None, "unsafe")
    assert a["ap"] == pytest.approx(0.5)  # casino ties the insult at unsafe=1
    rep = evaluate(rows, [gate], category_map=parse_map(["abuse=insult"], pol))
    a = rep["moderators"][0]["categories"]["abuse"]
    assert (a["policy_category"], a["score"], a["ap"]) == ("insult", "insult", 1.0)


def test_map_category_and_parse_map_errors():
    pol = parse_policy(POLICY)
    assert map_category("s1", pol, {}) == "S1"
    assert map_category("violent_crimes", pol, {}) == "S1"
    assert map_category("weapons", pol, {}) is None
    with pytest.raises(InputError, match="has no category 'S99'"):
        parse_map(["x=S99"], pol)
    with pytest.raises(InputError, match="expected DATA_CATEGORY=POLICY_CATEGORY_ID"):
        parse_map(["nonsense"], pol)


def test_evaluate_fails_on_moderator_error_and_on_empty_input(tmp_path):
    pol = parse_policy(POLICY)
    from prism_cli.moderators.classifier import ClassifierModerator

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "prism.json").write_text('{"name": "broken", "labels": ["unsafe"], "unsafe": "unsafe"}')
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.onnx").write_bytes(b"not an onnx model")
    gate = Gate(pol, [ClassifierModerator(folder)])
    with pytest.raises(ModeratorError, match="could not run on mem:1"):
        evaluate(_rows([("hi", 0, None)]), [gate])
    with pytest.raises(InputError, match="no labeled rows"):
        evaluate([], [Gate(pol, [RulesModerator(pol)])])


# ---------------------------------------------------------------- the profanity baseline (real package)


def test_profanity_baseline_scores_profanity_higher():
    from prism_cli.moderators.profanity import ProfanityModerator

    m = ProfanityModerator()
    assert m.name.startswith("profanity-check@") and m.categories() == set()
    polite, rude, neutral = m.score(
        ["Thank you so much for your help today.", "fuck you, you stupid piece of shit", "What time is it?"], "prompt"
    )
    assert set(rude) == {"unsafe"} and 0.0 <= polite["unsafe"] <= 1.0
    assert rude["unsafe"] > 0.9 > polite["unsafe"]
    assert rude["unsafe"] > neutral["unsafe"]
    assert m.score([], "prompt") == []


def test_profanity_missing_package_is_a_moderator_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "profanity_check", None)  # makes the import fail as if not installed
    from prism_cli.moderators.profanity import ProfanityModerator

    with pytest.raises(ModeratorError, match="pip install alt-profanity-check"):
        ProfanityModerator()
