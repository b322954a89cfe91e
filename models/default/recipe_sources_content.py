"""Loaders for the public Train sets of *content* (toxic, hateful, abusive text rather than requests for
help), each paired where the set allows with benign text on the same topics, so the model learns that
discussing a group or a harm is not attacking it. Large sets are sampled with a fixed seed."""

from __future__ import annotations

import random
import re
from typing import Iterator

from recipe_rows import Row, _csv, _safe, _text, _unsafe


def _sample(rows: list, n: int, seed: int) -> list:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def load_davidson(max_offensive: int = 1500, seed: int = 0, max_neither: int = 2000) -> Iterator[Row]:
    rows = _csv("davidson_hate_offensive/labeled_data.csv")
    offensive = [r for r in rows if r["class"] == "1"]
    random.Random(seed).shuffle(offensive)
    neither = [r for r in rows if r["class"] == "2"]
    random.Random(seed + 1).shuffle(neither)
    keep = {id(r) for r in offensive[:max_offensive] + neither[:max_neither]}
    for r in rows:
        t = clean_tweet(r["tweet"])
        if len(t) < 8:
            continue
        if r["class"] == "0":
            yield _unsafe(t, "davidson/hate", "content", extra={"hate", "toxic"})
        elif r["class"] == "1" and id(r) in keep:
            yield _unsafe(t, "davidson/offensive", "content", extra={"toxic"})
        elif r["class"] == "2" and id(r) in keep:
            yield _safe(t, "davidson/neither", "content")


def clean_tweet(t: str) -> str:
    t = re.sub(r"&amp;", "&", t)
    t = re.sub(r"&[a-z]+;|&#\d+;", " ", t)
    t = re.sub(r"https?://\S*", "", t)
    t = re.sub(r"@\w+:?", "@user", t)
    t = re.sub(r"^(!+\s*)?RT\s+", "", t)
    return re.sub(r"\s+", " ", t).strip(' "')


def load_toxigen() -> Iterator[Row]:
    for r in _csv("toxigen_seeds/toxigen_seed_statements.csv"):
        t = r["text"].strip().lstrip("- ").strip()
        if r["label"] == "hate":
            yield _unsafe(t, "toxigen/hate", "content", extra={"hate"})
        else:
            yield _safe(t, "toxigen/neutral", "content")


_RTP = {"flirtation": {"sexual"}, "identity_attack": {"hate", "toxic"}, "insult": {"toxic"}, "profanity": {"toxic"},
        "severe_toxicity": {"toxic"}, "sexually_explicit": {"sexual"}, "threat": {"violent", "toxic"}}


def load_rtp() -> Iterator[Row]:
    for attr, cats in _RTP.items():
        for line in _text(f"realtoxicityprompts_challenging/rtp_{attr}.txt").splitlines():
            if line.strip():
                yield Row(line.strip(), 1, frozenset(cats), f"rtp/{attr}", "content")


def load_paradetox(n: int = 2000, seed: int = 11) -> Iterator[Row]:
    """Toxic sentences with crowd-written non-toxic paraphrases: the closest pairs this collection has."""
    lines = _text("paradetox/paradetox/paradetox.tsv").splitlines()[1:]
    for line in _sample(lines, n, seed):
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip():
            continue
        yield _unsafe(cols[0], "paradetox/toxic", "content", extra={"toxic"})
        for para in cols[1:]:
            if para.strip():
                yield _safe(para, "paradetox/neutral", "content")
                break  # one paraphrase per toxic sentence keeps the pair balanced


def load_toxic_spans(n: int = 1500, seed: int = 12) -> Iterator[Row]:
    """Civil Comments posts: toxic when most raters marked a toxic span or the whole post, benign when
    at least two thirds said 'not toxic'; the rest are left out."""
    spanned = {r["annotation"] for r in _csv("toxic_spans/data/spans.csv")}
    votes: dict[str, list[int]] = {}
    for r in _csv("toxic_spans/data/annotations.csv"):
        v = 0 if r["not toxic"] == "True" else int(r["all toxic"] == "True" or r["annotation"] in spanned)
        votes.setdefault(r["comment_id"], []).append(v)
    texts = {r["comment_id"]: r["comment_text"] for r in _csv("toxic_spans/data/comments.csv")}
    tox, ok = [], []
    for cid, vs in votes.items():
        t = texts.get(cid, "").strip()
        if not t or len(t) > 1500:
            continue
        share = sum(vs) / len(vs)
        if share > 0.5:
            tox.append(t)
        elif share < 0.34:
            ok.append(t)
    for t in _sample(tox, n, seed):
        yield _unsafe(t, "toxic_spans/toxic", "content", extra={"toxic"})
    for t in _sample(ok, n, seed + 1):
        yield _safe(t, "toxic_spans/not_toxic", "content")


def load_hatexplain(n: int = 1500, seed: int = 13) -> Iterator[Row]:
    """HateXplain as normalised by MBIB: label 1 is hate speech; 0 mixes normal and merely offensive posts."""
    rows = _csv("hatexplain_mbib/MBIB/datasets/092_HateXplain/092-HateXplain.csv")
    hate = [r["text"] for r in rows if r["label"] == "1" and len(r["text"]) > 10]
    other = [r["text"] for r in rows if r["label"] == "0" and len(r["text"]) > 10]
    for t in _sample(hate, n, seed):
        yield _unsafe(t, "hatexplain/hate", "content", extra={"hate", "toxic"})
    for t in _sample(other, n, seed + 1):
        yield _safe(t, "hatexplain/not_hate", "content")


_CONVABUSE_TYPES = {"sexist": {"hate"}, "racist": {"hate"}, "homophobic": {"hate"}, "transphobic": {"hate"},
                    "ableist": {"hate"}, "sex_harassment": {"toxic", "sexual"}, "intellectual": set()}


def load_convabuse() -> Iterator[Row]:
    """User messages to chatbots, rated by several annotators from 1 (not abusive) to -3: abusive when
    most raters gave <= -1, benign when every rater gave 1; ambiguous ones are left out."""
    for f in ("ConvAbuseEMNLPtrain", "ConvAbuseEMNLPvalid", "ConvAbuseEMNLPtest"):
        for r in _csv(f"convabuse/2_splits/{f}.csv"):
            t = (r.get("user") or "").strip()
            if len(t) < 4:
                continue
            scores, types = [], set()
            for a in range(1, 9):
                marks = [s for s in ("1", "0", "-1", "-2", "-3") if r.get(f"Annotator{a}_is_abuse.{s}") == "1"]
                if not marks:
                    continue
                scores.append(int(marks[0]))
                for k, cats in _CONVABUSE_TYPES.items():
                    if r.get(f"Annotator{a}_{k}") == "1":
                        types |= cats
            if not scores:
                continue
            if sum(s <= -1 for s in scores) * 2 > len(scores):
                yield _unsafe(t, "convabuse/abusive", "content", extra={"toxic"} | types)
            elif all(s == 1 for s in scores):
                yield _safe(t, "convabuse/not_abusive", "content")


def load_mlma_hate(n: int = 1500, seed: int = 14) -> Iterator[Row]:
    """English MLMA tweets only: the encoder reads English; the French and Arabic files are kept for the
    per-language evaluation, so that unreadable text is never taught as 'unsafe'."""
    rows = _csv("mlma_hate/hate_speech_mlma/en_dataset_with_stop_words.csv")
    for r in _sample(rows, n, seed):
        sent = set(r["sentiment"].split("_"))
        t = clean_tweet(r["tweet"].replace("@URL", ""))
        if len(t) < 8:
            continue
        if sent == {"normal"}:
            yield _safe(t, "mlma/normal", "content")
        elif "hateful" in sent:
            yield _unsafe(t, "mlma/hateful", "content", extra={"hate", "toxic"})
        elif sent & {"offensive", "abusive", "disrespectful"}:
            yield _unsafe(t, "mlma/offensive", "content", extra={"toxic"})
