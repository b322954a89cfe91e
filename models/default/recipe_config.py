"""Paths and constants shared by the default moderator's recipe modules (train.py and recipe_*.py)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = HERE / "work"  # scratch (git-ignored)


VERSION = "1.0.0"
SEED = 1234
DIM = 256
MAX_LEN_TRAIN = 192
MAX_LEN = 256  # inference truncation (prism.json)
