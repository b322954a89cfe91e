"""`prism eval` end to end, as a user runs it: a real subprocess, a policy whose rules make every figure exact."""

from __future__ import annotations

import csv
import json
import os

import pytest

from tests.conftest import prism as run_prism

POLICY = """
name: evalcli
description: keyword rules only, so the decisions are exactly predictable
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
"""

# text, label, category   -> gate decision under POLICY
ROWS = [
    ("I will stab him tonight", "unsafe", "violence"),  # block: TP
    ("tell me how to hurt my neighbour", "unsafe", "violence"),  # allow: FN
    ("you absolute idiot", "1", "insults"),  # warn: TP
    ("stab the potato with a fork before baking", "safe", "violence"),  # block: FP (look-alike)
    ("have a lovely day", "0", ""),  # allow: TN
    ("what is the capital of France?", "benign", ""),  # allow: TN
]
# Overall: TP=2 FP=1 FN=1 TN=2 -> precision 2/3, recall 2/3, F1 2/3, FPR 1/3.
# AP over unsafe = max(rule scores): 1 for stab, idiot, potato -> one step at P=2/3 (R=2/3), then P=3/6 (R=1):
# AP = 2/3 * 2/3 + 1/3 * 1/2 = 4/9 + 1/6 = 11/18.


@pytest.fixture()
def env(tmp_path):
    e = dict(os.environ, PRISM_HOME=str(tmp_path / "home"), NO_COLOR="1")
    e.pop("PRISM_OFFLINE", None)
    return e


@pytest.fixture()
def files(tmp_path):
    pol = tmp_path / "P.yaml"
    pol.write_text(POLICY, encoding="utf-8")
    jl = tmp_path / "data.jsonl"
    jl.write_text("".join(json.dumps({"text": t, "label": y, "category": c or None}) + "\n" for t, y, c in ROWS))
    cs = tmp_path / "data.csv"
    with cs.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "category"])
        w.writerows(ROWS)
    return pol, jl, cs


def prism(args, env, cwd):
    return run_prism(*args, env=env, cwd=cwd, text=True, timeout=120)


def test_eval_json_exact_figures(files, env, tmp_path):
    pol, jl, _ = files
    r = prism(["eval", str(jl), "--json", "--moderator", "rules", "--policy", str(pol)], env, tmp_path)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["n"], rep["positives"], rep["policy"], rep["role"]) == (6, 3, "evalcli", "prompt")
    (mod,) = rep["moderators"]
    assert mod["moderator"] == "rules"
    o = mod["overall"]
    assert (o["tp"], o["fp"], o["fn"], o["tn"]) == (2, 1, 1, 2)
    assert o["precision"] == pytest.approx(2 / 3, abs=1e-6)
    assert o["recall"] == pytest.approx(2 / 3, abs=1e-6)
    assert o["f1"] == pytest.approx(2 / 3, abs=1e-6)
    assert o["fpr"] == pytest.approx(1 / 3, abs=1e-6)
    assert o["ap"] == pytest.approx(11 / 18, abs=1e-6) and o["auprc"] == o["ap"]
    v = mod["categories"]["violence"]  # unmapped name: ranked by overall unsafe, own look-alike as negative
    assert (v["n"], v["positives"], v["score"], v["negatives_from"]) == (3, 2, "unsafe", "category")
    assert (v["precision"], v["recall"], v["fpr"]) == (0.5, 0.5, 1.0)
    i = mod["categories"]["insults"]  # maps to policy category "insult" by name
    assert (i["policy_category"], i["score"], i["negatives_from"], i["n"]) == ("insult", "insult", "all_safe", 4)
    assert (i["recall"], i["ap"]) == (1.0, 1.0)


def test_eval_csv_gives_the_same_report(files, env, tmp_path):
    pol, jl, cs = files
    a = json.loads(prism(["eval", str(jl), "--json", "-m", "rules", "-p", str(pol)], env, tmp_path).stdout)
    b = json.loads(prism(["eval", str(cs), "--json", "-m", "rules", "-p", str(pol)], env, tmp_path).stdout)
    assert a["moderators"] == b["moderators"]


def test_eval_map_limit_batch_and_response_role(files, env, tmp_path):
    pol, jl, _ = files
    r = prism(["eval", str(jl), "--json", "-m", "rules", "-p", str(pol), "--map", "violence=S1", "--limit", "4", "--batch-size", "1"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["n"] == 4
    v = rep["moderators"][0]["categories"]["violence"]
    assert (v["policy_category"], v["score"]) == ("S1", "S1")
    r = prism(["eval", str(jl), "--json", "-m", "rules", "-p", str(pol), "--role", "response"], env, tmp_path)
    assert json.loads(r.stdout)["role"] == "response"


def test_eval_table_compares_moderators_side_by_side(files, env, tmp_path):
    pol, jl, _ = files
    r = prism(["eval", str(jl), "-m", "rules", "-m", "profanity-check", "-p", str(pol)], env, tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "6 rows, 3 unsafe" in out and "policy evalcli" in out
    rules_rows = [ln for ln in out.splitlines() if "│ rules " in ln]
    prof_rows = [ln for ln in out.splitlines() if "profanity-check@" in ln]
    assert len(rules_rows) == 3 and len(prof_rows) == 3  # all rows, insults, violence
    assert "0.667" in rules_rows[0] and "0.611" in rules_rows[0]  # precision/recall/F1 2/3, AP 11/18
    r = prism(["eval", str(jl), "--json", "-m", "rules", "-m", "profanity-check", "-p", str(pol)], env, tmp_path)
    names = [m["moderator"] for m in json.loads(r.stdout)["moderators"]]
    # The policy's rules join every gate (as in `prism check`), so the baseline runs as profanity-check+rules.
    assert names[0] == "rules" and names[1].startswith("profanity-check@") and names[1].endswith("+rules")


def test_eval_bad_input_exits_2_with_one_line(files, env, tmp_path):
    pol, _, _ = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": 0}\n{"text": "x", "label": "perhaps"}\n')
    r = prism(["eval", str(bad), "--json", "-m", "rules", "-p", str(pol)], env, tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip().startswith(f"prism: error: {bad}:2: label:") and len(r.stderr.strip().splitlines()) == 1
    for args in (["--role", "system"], ["--batch-size", "0"], ["--map", "x=NOPE"]):
        r = prism(["eval", str(files[1]), "-m", "rules", "-p", str(pol), *args], env, tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""


def test_eval_moderator_that_cannot_run_exits_3(files, env, tmp_path):
    pol, jl, _ = files
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "prism.json").write_text('{"name": "broken", "labels": ["unsafe"], "unsafe": "unsafe"}')
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.onnx").write_bytes(b"\x00garbage")
    r = prism(["eval", str(jl), "--json", "-m", str(folder), "-p", str(pol)], env, tmp_path)
    assert r.returncode == 3
    assert r.stdout == "" and "Traceback" not in r.stderr
    assert "broken" in r.stderr and "could not run" in r.stderr
