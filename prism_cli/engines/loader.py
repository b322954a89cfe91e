"""Pick and build the engine `prism chat` wraps: a GGUF file in process, or a server URL.

Everything the user can get wrong (missing or broken file, bad URL, unknown chat format,
nonsense numbers) becomes one InputError line here, before any model runtime is imported
where possible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prism_cli.engines import chat_format as templates
from prism_cli.engines.base import Engine
from prism_cli.errors import InputError

LOCAL_OPTS = {"n_ctx", "threads", "gpu_layers", "chat_format", "seed", "verbose", "top_k", "top_p", "min_p", "repeat_penalty"}
HTTP_OPTS = {"api_key", "timeout"}
MIN_CTX = 64
"""The smallest context a chat can run in: a prompt, the template around it and a short reply."""
LIMITS = (("n_ctx", "--ctx", MIN_CTX), ("threads", "--threads", 1))


def check_limits(**opts: Any) -> None:
    """The one rule for the engine's numbers (chat and serve, local and --server): a command may call it
    early, before it reads its input, and open_engine calls it again."""
    for key, flag, low in LIMITS:
        v = opts.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < low):
            raise InputError(f"{flag} must be a whole number >= {low}, got {v!r}")

def open_engine(model: str | None, server: str | None, **opts: Any) -> Engine:
    """LocalEngine for a GGUF path, HttpEngine for a server URL (where `model` names the server's model).

    Options the chosen engine does not use are ignored, so a caller can pass all its flags;
    None values mean "engine default".
    """
    unknown = set(opts) - LOCAL_OPTS - HTTP_OPTS
    if unknown:
        raise TypeError(f"open_engine: unknown option(s) {sorted(unknown)}")
    given = {k: v for k, v in opts.items() if v is not None}
    check_limits(**given)
    if server:
        return _open_http(server, model, {k: v for k, v in given.items() if k in HTTP_OPTS})
    if not model:
        raise InputError("give a GGUF model file, or --server URL for a running server")
    return _open_local(model, {k: v for k, v in given.items() if k in LOCAL_OPTS})


def _open_http(server: str, model: str | None, opts: dict[str, Any]) -> Engine:
    from prism_cli.engines.http import HttpEngine, parse_base_url

    if model and model.lower().endswith(".gguf"):
        raise InputError(f"{model}: with --server the model runs in the server; drop the file or --server")
    try:
        parse_base_url(server)
    except ValueError as e:
        raise InputError(str(e)) from None
    return HttpEngine(server, model=model or None, **opts)


def check_gguf(path: Path) -> None:
    """A whole GGUF model file (header read, tensor data present); InputError naming the file otherwise."""
    from prism_cli.gguf import read_gguf_info

    if not path.exists():
        raise InputError(f"{path}: no such model file")
    read_gguf_info(path)


def _open_local(model: str, opts: dict[str, Any]) -> Engine:
    path = Path(model).expanduser()
    check_gguf(path)
    fmt = opts.get("chat_format")
    if fmt is not None and fmt != templates.GGUF:
        try:
            templates.get(fmt)
        except ValueError as e:
            raise InputError(f"--chat-format: {e}") from None
    from prism_cli.engines.local import LocalEngine

    return LocalEngine(path, **opts)  # its EngineError is a PrismError: one line, exit 2
