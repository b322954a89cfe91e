"""Training targets of the default model (models/default/recipe_weights.py), on made-up rows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models" / "default"))

from recipe_rows import CATEGORIES, Row  # noqa: E402
from recipe_weights import POS_WEIGHT_CAP, average_weights, category_fit, category_pos_weight, targets  # noqa: E402


def _rows() -> list[Row]:
    """90 toxic and 10 sex_crime unsafe rows, 5 unsafe rows without a category, 50 safe rows."""
    rows = [Row(f"t{i}", 1, frozenset({"toxic"}), "x/toxic", "content") for i in range(90)]
    rows += [Row(f"s{i}", 1, frozenset({"sex_crime"}), "x/s3", "request") for i in range(10)]
    rows += [Row(f"u{i}", 1, frozenset(), "x/unknown", "request") for i in range(5)]
    rows += [Row(f"b{i}", 0, frozenset(), "x/benign", "benign") for i in range(50)]
    return rows


def test_rare_categories_get_heavier_positives_and_common_ones_are_left_alone():
    y, mask, _ = targets(_rows())
    pw = category_pos_weight(y, mask)
    assert pw.shape == (len(CATEGORIES),)
    s3, toxic = CATEGORIES.index("sex_crime"), CATEGORIES.index("toxic")
    assert abs(pw[s3] - 3.0) < 1e-6  # sqrt(90 / 10): only the 100 rows with a category count
    assert pw[toxic] == 1.0  # 90 positives against 10: never weighed below 1
    assert pw[CATEGORIES.index("child")] == 1.0  # no positive at all: nothing to lift


def test_the_weight_is_capped():
    y, mask, _ = targets(_rows())
    assert category_pos_weight(y, mask, cap=2.0)[CATEGORIES.index("sex_crime")] == 2.0
    assert POS_WEIGHT_CAP >= 1.0


def test_category_fit_counts_only_rows_labelled_with_the_category():
    rows = _rows()
    p = np.zeros((len(rows), len(CATEGORIES) + 1), dtype=np.float32)
    s3 = CATEGORIES.index("sex_crime") + 1
    p[90:95, s3] = 0.9  # half of the ten sex_crime rows reach 0.5
    p[:90, s3] = 0.9  # toxic rows scoring high on S3 do not count toward S3's fit
    fit = category_fit(p, rows)
    assert fit["sex_crime"] == {"n": 10, "recall": 0.5}
    assert fit["toxic"]["recall"] == 0.0 and fit["toxic"]["n"] == 90
    assert "child" not in fit


def test_severe_rows_weigh_more_before_balancing():
    rows = _rows()
    _, _, w1 = targets(rows)
    _, _, w3 = targets(rows, severe=3.0)
    s3 = slice(90, 100)
    toxic = slice(0, 90)
    ratio1 = w1[s3].mean() / w1[toxic].mean()  # 2: requests weigh 1, content rows 0.5
    assert abs(w3[s3].mean() / w3[toxic].mean() - 3.0 * ratio1) < 1e-4
    # the balance of unsafe to safe mass is kept whatever the severe weight
    pos, neg = w3[:105].sum(), w3[105:].sum()
    assert abs(neg / pos - 1.2) < 1e-4


def test_severe_fit_reads_scores_as_the_shipped_policies_do():
    from recipe_rows import LABELS
    from recipe_weights import severe_fit

    rows = _rows()
    p = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
    s3, s4 = LABELS.index("sex_crime"), LABELS.index("child")
    p[90:100, 0] = 0.6  # every S3 row over the default threshold...
    p[90:93, 0] = 0.9  # ...three also over minimal's overall 0.85
    p[93:95, s3] = 0.5  # two more caught by minimal's S3 threshold
    p[95, s4] = 0.3  # one by minimal's S4 threshold (0.25)
    p[96, s3] = 0.4  # and one by its S3 threshold (0.35 since 2.1.0)
    p[:90, 0] = 1.0  # toxic rows do not count
    fit = severe_fit(p, rows)
    assert fit["n"] == 10
    assert fit["default"] == fit["strict"] == 1.0
    assert abs(fit["minimal"] - 0.7) < 1e-6
    assert severe_fit(p, rows[:90]) == {"n": 0}


def test_a_soup_is_the_mean_of_its_runs_and_keeps_integer_buffers():
    a = {"w": np.array([1.0, 2.0], dtype=np.float32), "pos": np.arange(3)}
    b = {"w": np.array([3.0, 6.0], dtype=np.float32), "pos": np.arange(3)}
    c = {"w": np.array([5.0, 1.0], dtype=np.float32), "pos": np.arange(3)}
    soup = average_weights([a, b, c])
    assert np.allclose(soup["w"], [3.0, 3.0]) and soup["w"].dtype == np.float32
    assert soup["pos"].dtype == a["pos"].dtype and (soup["pos"] == [0, 1, 2]).all()
    assert np.allclose(average_weights([a])["w"], a["w"])


def test_runs_of_different_networks_are_not_averaged():
    import pytest

    with pytest.raises(ValueError, match="different networks"):
        average_weights([{"w": np.zeros(2)}, {"v": np.zeros(2)}])
    with pytest.raises(ValueError, match="no weights"):
        average_weights([])
