"""The command that installs an optional extra, as it works from where prism was installed.

prism-cli is not on a package index, so `pip install 'prism-cli[llama]'` fails for everyone. An
editable checkout gets `pip install -e 'DIR[llama]'`; a pipx install gets `pipx inject`; anything
else gets the extra's own requirements (read from prism's metadata, so they follow pyproject.toml).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

DIST = "prism-cli"
# Used when prism runs from a source tree without installed metadata (PYTHONPATH=...).
_FALLBACK = {"llama": ["llama-cpp-python[server]>=0.3.16"]}


def install_command(extra: str) -> str:
    """One shell command that adds `extra` to the environment prism runs in."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(DIST)
    except PackageNotFoundError:
        return f"{_pip()} install {_quote(_FALLBACK.get(extra, []))}".rstrip()
    reqs = [r.split(";")[0].strip() for r in (dist.requires or []) if _is_extra(r, extra)] or _FALLBACK.get(extra, [])
    source = _editable_dir(dist.read_text("direct_url.json"))
    if source is not None:
        where = "." if Path.cwd().resolve() == source.resolve() else str(source)
        return f"{_pip()} install -e '{where}[{extra}]'"
    if "pipx" in Path(sys.prefix).parts:
        return f"pipx inject {DIST} {_quote(reqs)}"
    return f"{_pip()} install {_quote(reqs)}"


def _is_extra(req: str, extra: str) -> bool:
    marker = req.partition(";")[2].replace('"', "'").replace(" ", "")
    return f"extra=='{extra}'" in marker


def _editable_dir(direct_url: str | None) -> Path | None:
    """The checkout of an editable install (PEP 610 direct_url.json), else None."""
    try:
        info = json.loads(direct_url or "")
    except ValueError:
        return None
    url = info.get("url", "") if isinstance(info, dict) else ""
    if not (info.get("dir_info") or {}).get("editable") or not url.startswith("file://"):
        return None
    from urllib.parse import unquote, urlsplit

    path = Path(unquote(urlsplit(url).path))
    return path if path.is_dir() else None


def _pip() -> str:
    """`pip` when the pip on PATH belongs to prism's Python, else that Python's `-m pip`."""
    found = shutil.which("pip")
    if found and Path(found).parent == Path(sys.executable).parent:
        return "pip"
    exe = sys.executable
    return f"{exe if ' ' not in exe else repr(exe)} -m pip"


def _quote(reqs: list[str]) -> str:
    return " ".join(f"'{r}'" for r in reqs)

