"""A chat model named by its Hugging Face repository: `hf:ORG/REPO[@REV][:QUANT]` or `hf:ORG/REPO[@REV]/FILE.gguf`.

The first use asks the Hub once for the repository's files at one commit, picks the GGUF, and
installs it with download.pull, exactly as `prism models pull` installs a moderator: pinned to
that commit, resumable, sha256-checked, linked from the shared Hugging Face cache when it is
already there. It lands in prism's model folder under a name made from the reference (kind
"chat"), so later runs find it there and touch no network; `prism models rm NAME` deletes it.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prism_cli.download import TIMEOUT_ENV, DownloadError, pull
from prism_cli.errors import InputError
from prism_cli.model_store import MANIFEST, Installed, find_installed
from prism_cli.registry import COMMIT_RE, Entry, FileSpec

PREFIXES = ("hf:", "hf.co/", "huggingface.co/")
KIND = "chat"
DEFAULT_QUANT = "Q4_K_M"
"""Taken when a repository holds several GGUFs and the reference names none (as llama.cpp and Ollama do)."""
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_QUANT_RE = re.compile(r"^[A-Za-z0-9_]{1,24}$")
_SPLIT_RE = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class HubRef:
    repo: str
    revision: str | None
    quant: str | None
    filename: str | None
    text: str

    @property
    def local_name(self) -> str:
        """The installed model's name: readable, unique per reference, within model_store.NAME_RE."""
        tail = self.quant or (Path(self.filename).stem if self.filename else "")
        parts = ["hf", *self.repo.split("/"), *([self.revision[:12]] if self.revision else []), *([tail] if tail else [])]
        name = "--".join(parts)
        if len(name) <= 64:
            return name
        digest = hashlib.sha256(self.text.encode()).hexdigest()[:8]
        return f"{name[:54]}--{digest}"


def is_hub_ref(text: str | None) -> bool:
    """True for `hf:...`; `hf.co/...` and `huggingface.co/...` too, unless such a local file exists."""
    if not text:
        return False
    if text.startswith("hf:"):
        return True
    return text.startswith(PREFIXES[1:]) and not Path(text).exists()


def parse(text: str) -> HubRef:
    """The parts of a reference; InputError saying the accepted forms otherwise."""
    body = next((text[len(p):] for p in PREFIXES if text.startswith(p)), text)
    usage = f"{text!r}: expected hf:ORG/REPO[:QUANT] or hf:ORG/REPO/FILE.gguf (e.g. hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M)"
    org, _, rest = body.partition("/")
    name, sep, path = rest.partition("/")
    quant = None
    if not sep:
        name, colon, quant = name.partition(":")
        if colon and not _QUANT_RE.match(quant):
            raise InputError(f"{usage}; {quant!r} is not a quantization name like Q4_K_M")
        quant = quant.upper() or None
    name, at, revision = name.partition("@")
    if at and not revision:
        raise InputError(f"{usage}; nothing after '@' (a branch, tag or 40-hex commit)")
    repo = f"{org}/{name}"
    if not _REPO_RE.match(repo):
        raise InputError(usage)
    if sep and (not path.lower().endswith(".gguf") or ".." in path.split("/") or path.startswith("/")):
        raise InputError(f"{usage}; the file must be a .gguf inside the repository")
    return HubRef(repo, revision or None, quant, path or None, text)


def pick_file(ref: HubRef, files: list[str]) -> str:
    """The repository file the reference means; InputError listing the GGUFs otherwise."""
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf") and "mmproj" not in f.lower())
    where = f"{ref.repo}" + (f"@{ref.revision}" if ref.revision else "")
    listing = ", ".join(Path(f).name for f in ggufs[:12]) + (" ..." if len(ggufs) > 12 else "")
    if ref.filename:
        if ref.filename in files:
            return ref.filename
        raise InputError(f"{ref.text}: no file {ref.filename} in {where}" + (f" (GGUF files: {listing})" if ggufs else ""))
    if not ggufs:
        raise InputError(f"{ref.text}: {where} holds no .gguf file (prism chat runs GGUF models)")
    quant = ref.quant or (None if len(ggufs) == 1 else DEFAULT_QUANT)
    if quant is None:
        return ggufs[0]
    tag = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(quant)}(?![A-Za-z0-9_])", re.IGNORECASE)
    hits = [f for f in ggufs if tag.search(Path(f).name)]
    if not hits:
        chosen = "" if ref.quant else f" and none is {DEFAULT_QUANT}; name one"
        raise InputError(f"{ref.text}: no {quant} GGUF in {where}{chosen} (files: {listing})")
    if any(_SPLIT_RE.search(f) for f in hits):
        raise InputError(f"{ref.text}: the {quant} GGUF of {where} is split in parts, which prism cannot fetch yet; "
                         "choose a smaller quantization or download the parts yourself and give the first one's path")
    if len(hits) > 1:
        raise InputError(f"{ref.text}: several {quant} files in {where} ({', '.join(hits)}); "
                         f"name one: hf:{ref.repo}/{hits[0]}")
    return hits[0]


def installed(ref: HubRef) -> Installed | None:
    """The model this reference installed before, if whole (its main file at its recorded size)."""
    inst = find_installed(ref.local_name)
    if inst is None or inst.kind != KIND:
        return None
    main = inst.manifest.get("main")
    sizes = {f.get("path"): f.get("size") for f in inst.manifest.get("files", [])}
    p = inst.folder / str(main)
    return inst if main and p.is_file() and p.stat().st_size == sizes.get(main) else None


def resolve(ref: HubRef, *, offline: bool, notice: Callable[[str], None] = lambda msg: None) -> Path:
    """The local GGUF for a reference: installed before, else looked up and pulled now."""
    inst = installed(ref)
    if inst is not None:
        rev = (inst.manifest.get("files") or [{}])[0].get("revision") or "?"
        notice(f"{ref.text}: {ref.repo}@{str(rev)[:12]} from {inst.folder} (prism models rm {ref.local_name} to fetch again)")
        return inst.path
    if offline:
        raise DownloadError(f"{ref.text} is not downloaded yet and offline mode forbids the network; drop --offline, "
                            "unset PRISM_OFFLINE or run `prism config set offline false` (or give a local .gguf)")
    commit, files = _listing(ref)
    filename = pick_file(ref, files)
    spec = FileSpec(ref.repo, filename, commit, None, None, Path(filename).name)
    if spec.dest == MANIFEST:
        raise InputError(f"{ref.text}: unusable file name {filename!r}")
    notice(f"{ref.text}: {filename} at {ref.repo}@{commit[:12]} "
           f"(pin this exact file with hf:{ref.repo}@{commit}/{filename})")
    entry = Entry(name=ref.local_name, kind=KIND, format="gguf", files=(spec,))
    inst, _ = pull(entry, offline=False)
    return inst.path


def _listing(ref: HubRef) -> tuple[str, list[str]]:
    """(commit, file names) of the repository at the reference's revision: one Hub API call, no retries."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # read at import, as in download.pull
    import httpx2

    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import (
        GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError,
    )

    try:
        timeout = float(os.environ.get(TIMEOUT_ENV) or 30)
    except ValueError:
        timeout = 30.0
    try:
        info = HfApi().model_info(ref.repo, revision=ref.revision, timeout=timeout)
    except GatedRepoError:
        raise DownloadError(f"{ref.text}: access to {ref.repo} is restricted (gated): accept its terms at "
                            f"https://huggingface.co/{ref.repo} and set a token: export HF_TOKEN=hf_... "
                            "(or run `hf auth login`)") from None
    except RepositoryNotFoundError:
        raise DownloadError(f"{ref.text}: no repository {ref.repo} on {constants.ENDPOINT} (or it is private: "
                            "set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise DownloadError(f"{ref.text}: no revision {ref.revision!r} in {ref.repo}") from None
    except OfflineModeIsEnabled:
        raise DownloadError("HF_HUB_OFFLINE is set, so huggingface_hub refuses the network; unset it to download") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else 0
        raise DownloadError(f"{ref.text}: the Hub answered HTTP {status} listing {ref.repo}") from None
    except httpx2.TimeoutException:
        raise DownloadError(f"{ref.text}: {constants.ENDPOINT} did not answer in {timeout:g}s ({TIMEOUT_ENV} sets the limit)") from None
    except ValueError as e:  # huggingface_hub's repo id validation
        raise InputError(f"{ref.text}: {(str(e).splitlines() or ['bad repository id'])[0][:160]}") from None
    except (httpx2.HTTPError, OSError) as e:
        why = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise DownloadError(f"{ref.text}: cannot reach {constants.ENDPOINT} (no network? {why})") from None
    commit = info.sha or ""
    if not COMMIT_RE.match(commit):
        raise DownloadError(f"{ref.text}: the Hub gave no commit for {ref.repo} (got {commit!r}); cannot pin the download")
    return commit, [s.rfilename for s in (info.siblings or [])]
