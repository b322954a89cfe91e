"""In-process mode: `prism serve model.gguf` serves a GGUF through the same LocalEngine as `prism chat`.

llama.cpp runs one generation at a time per model, so the engine sits behind a lock and the
server's admission queue lets one request generate while the others wait (or get 429)."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

from prism_cli.serve.errors import ApiError
from prism_cli.serve.requests import GenRequest

DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.7


class LocalBackend:
    def __init__(self, engine: Any):
        self.engine = engine
        self.lock = threading.Lock()
        self.name = engine.name
        self.created = int(time.time())

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.name, "object": "model", "created": self.created, "owned_by": "prism"}]}

    def pieces(self, req: GenRequest) -> Iterator[str]:
        """The reply's pieces (called in a worker thread holding self.lock)."""
        from prism_cli.engines.base import EngineError

        msgs = [
            {"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]}
            for m in req.messages if m["role"] in ("system", "developer", "user", "assistant")
        ]  # fmt: skip
        try:
            return self.engine.stream(
                msgs,
                max_tokens=req.max_tokens or DEFAULT_MAX_TOKENS,
                temperature=DEFAULT_TEMPERATURE if req.temperature is None else req.temperature,
                seed=req.seed,
            )
        except EngineError as e:
            raise ApiError(400, f"the model cannot take this request: {e}", code="context_length_exceeded" if "context" in str(e) else None) from None

    def finish_reason(self) -> str:
        reason = (getattr(self.engine, "last_stats", None) or {}).get("stop_reason")
        return "length" if reason in ("length", "context") else "stop"

    def usage(self) -> dict[str, int] | None:
        stats = getattr(self.engine, "last_stats", None) or {}
        if "prompt_tokens" not in stats:
            return None
        p, c = int(stats["prompt_tokens"]), int(stats.get("generated_tokens", 0))
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
