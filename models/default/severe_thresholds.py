"""Where the shipped policies put their S3 (sex-related crimes) threshold, read off the *validation*
split: for each candidate, the share of S3/S4 unsafe validation rows each policy blocks, and what it
costs on the safe ones (all, benign look-alikes, everyday prompts and reply openings).

    python models/default/severe_thresholds.py      # ~2 min; reads ../shared/data (or $PRISM_DATA)

Why a lower bar for S3: S4 already has one (0.25) because the harm is grave; since 2.1.0 weighs the rare
categories' positives, the S3 head is informative enough to carry one too. 0.35 is where blocking of the
S3/S4 validation rows stops rising under both default and minimal, at under 0.2 points of look-alike FPR
and none on everyday prompts (CARD_NOTES, 2.1.0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import handwritten  # noqa: E402
import recipe_data as rd  # noqa: E402
from recipe_calibrate import groups  # noqa: E402
from recipe_export import ort_predict  # noqa: E402
from recipe_weights import SEVERE, SHIPPED_POLICY_DIR  # noqa: E402

CANDIDATES = (0.5, 0.45, 0.4, 0.35, 0.3, 0.25)


def main() -> None:
    from prism_cli.policy_store import load_policy

    handwritten.ENABLED.update(handwritten.SHIPPED_WITH)  # the split the shipped model was calibrated on
    val = rd.split(rd.load_all())["val"]
    p = ort_predict(HERE, [r.text for r in val])
    s3, s4 = (rd.LABELS.index(c) for c in SEVERE)
    g = groups(val)
    safe = np.array([r.label == 0 for r in val])
    severe = np.array([r.label == 1 and bool(r.cats & set(SEVERE)) for r in val])
    print(f"validation: {len(val)} rows, {int(severe.sum())} S3/S4 unsafe, {int(safe.sum())} safe "
          f"({int(g['lookalike'].sum())} look-alikes, {int(g['everyday'].sum())} everyday)")
    print("| policy | S3 threshold | S3/S4 rows blocked | FPR, all safe | look-alikes | everyday |")
    print("|---|---|---|---|---|---|")
    for name in ("default", "minimal"):
        pol = load_policy(str(SHIPPED_POLICY_DIR / f"{name}.yaml"))
        ov, t4 = pol.overall.threshold, pol.category("S4").threshold
        for t in CANDIDATES:
            hit = (p[:, 0] >= ov) | (p[:, s3] >= t) | (p[:, s4] >= t4)
            print(f"| {name} | {t:.2f} | {hit[severe].mean():.3f} | {hit[safe].mean():.4f} | "
                  f"{hit[g['lookalike']].mean():.4f} | {hit[g['everyday']].mean():.4f} |")


if __name__ == "__main__":
    main()
