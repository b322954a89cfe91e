"""Baseline moderator: alt-profanity-check, a linear SVM over profanity (scikit-learn).

It is the bar the bundled model must clear in `prism eval`, not a moderator
to rely on: it knows swear words, not harmful requests. It gives only an overall
"unsafe" score, so a policy acts on it through its `overall` threshold.
The package (and scikit-learn with it) is imported on first use and is not a runtime
dependency of prism.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

from prism_cli.errors import ModeratorError
from prism_cli.moderators.base import Message, Role
from prism_cli.verdict import OVERALL, Scores

PACKAGE = "alt-profanity-check"


def _load() -> tuple[Callable[[list[str]], Any], str]:
    try:
        with warnings.catch_warnings():
            # Its pickled SVM may warn about the scikit-learn version; the scores are unaffected.
            warnings.simplefilter("ignore")
            from profanity_check import predict_prob
    except ImportError as e:
        raise ModeratorError(
            f"the profanity-check baseline needs the package {PACKAGE} "
            f"(pip install {PACKAGE}): {e}"
        ) from None
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version(PACKAGE)
    except PackageNotFoundError:
        ver = "unknown"
    return predict_prob, ver


class ProfanityModerator:
    """Scores each text with alt-profanity-check's probability of being profane/offensive."""

    def __init__(self) -> None:
        self._predict, ver = _load()
        self.name = f"profanity-check@{ver}"

    def categories(self, role: Role | None = None) -> set[str]:
        return set()

    def score(self, texts: Sequence[str], role: Role, context: Sequence[Message] | None = None) -> list[Scores]:
        if not texts:
            return []
        probs = self._predict(list(texts))
        return [{OVERALL: min(1.0, max(0.0, float(p)))} for p in probs]
