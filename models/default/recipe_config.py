"""Paths and constants shared by the default moderator's recipe modules (train.py and recipe_*.py)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = HERE / "work"  # scratch (git-ignored)

VERSION = "2.0.2"
SEED = 1234
MAX_LEN_TRAIN = 48  # training crops (most prompts are far shorter; the cost grows with length)
MAX_LEN = 128  # the window prism scores at inference (prism.json max_length); longer texts are windowed
