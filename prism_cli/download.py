"""`prism models pull`: fetch a catalogue entry's files from the Hugging Face Hub and trust the bytes.

huggingface_hub does what it does well: Hub URLs (HF_ENDPOINT), tokens (HF_TOKEN or `hf auth
login`), the metadata HEAD with its error classes, and finding a file already in the shared HF
cache. Written here is what its hf_hub_download (2.x) lacks for prism: it deletes a partial file
when a download fails (no resume across runs) and publishes into its cache before any sha256
check. So prism streams to `<file>.part` in its own cache dir with HTTP Range resume, retries
timeouts / dropped connections / 5xx with backoff, fsyncs, checks size and sha256, and only then
renames the file into place; a file lock keeps two pulls of one model apart.
Only this module touches the network, and only when `pull` is called.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from prism_cli.errors import DownloadError
from prism_cli.out import notice
from prism_cli.paths import cache_dir
from prism_cli.model_store import Installed, find_installed, new_manifest, publish, sha256_file, staging_dir
from prism_cli.outputs import fsync_file, write_json
from prism_cli.registry import SHA256_RE, Entry, FileSpec

T = TypeVar("T")
TIMEOUT_ENV, RETRIES_ENV, BACKOFF_ENV = "PRISM_HTTP_TIMEOUT", "PRISM_RETRIES", "PRISM_RETRY_BACKOFF"
LOCK_WAIT_S = 6 * 3600


class _Retryable(Exception):
    """A transient failure (timeout, dropped connection, 5xx): try again, resuming."""


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _settings() -> tuple[float, int, float]:
    return _env_float(TIMEOUT_ENV, 30.0), int(_env_float(RETRIES_ENV, 5)), _env_float(BACKOFF_ENV, 1.0)


def _mb(n: int | None) -> str:
    return "unknown size" if n is None else f"{n / 1e6:.1f} MB"


def pull(entry: Entry, *, offline: bool, allow_unpinned: bool = False, force: bool = False) -> tuple[Installed, str]:
    """Install `entry` into models_dir()/<name>. Returns (installed, what happened)."""
    if entry.bundled:
        raise DownloadError(f"{entry.name} is bundled with prism; there is nothing to download")
    # huggingface_hub reads this at import: no agent-detection/telemetry request besides the files themselves
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    unpinned = [f for f in entry.files if not f.pinned]
    if unpinned and not allow_unpinned:
        f = unpinned[0]
        raise DownloadError(f"{entry.name}: {f.repo}/{f.filename} is not pinned to a commit in the registry; refusing "
                            "(--allow-unpinned takes the repo's current 'main' and records the commit it got)")
    from filelock import FileLock, Timeout

    lock_path = cache_dir() / "locks" / f"{entry.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0.2)
    except Timeout:
        notice(f"another `prism models pull {entry.name}` is running; waiting for it")
        lock.acquire(timeout=LOCK_WAIT_S)
    try:
        inst = find_installed(entry.name)
        if inst is not None and not force and _complete(inst, entry):
            return inst, "already installed"
        return _install(entry, offline), "installed"
    finally:
        lock.release()


def _complete(inst: Installed, entry: Entry) -> bool:
    """Cheap check that an install has every file at its recorded size (`verify` re-hashes)."""
    recorded = {f.get("path"): f.get("size") for f in inst.manifest.get("files", [])}
    for spec in entry.files:
        p = inst.folder / spec.dest
        if spec.dest not in recorded or not p.is_file() or p.stat().st_size != recorded[spec.dest]:
            return False
    return True


def _install(entry: Entry, offline: bool) -> Installed:
    cached = {spec: _hf_cached(spec) for spec in entry.files}
    if offline and not all(cached.values()):
        raise DownloadError(f"offline mode forbids downloading {entry.name} (it is not in the shared Hugging Face "
                            "cache); drop --offline, unset PRISM_OFFLINE or run `prism config set offline false`")
    staging = staging_dir(entry.name)
    try:
        manifest = new_manifest(entry.name, entry.kind, entry.format, "huggingface", prompt_format=entry.prompt_format)
        for spec in entry.files:
            manifest["files"].append(_fetch(entry, spec, staging, cached[spec]))
        if entry.format == "gguf":
            manifest["main"] = entry.files[0].dest
        if entry.classifier:
            version = (entry.files[0].revision or manifest["files"][0].get("revision") or "0")[:12]
            sha = write_classifier_config(staging, entry, version)
            manifest["files"].append({"path": "prism.json", "sha256": sha, "size": (staging / "prism.json").stat().st_size,
                                      "sha256_source": "written by prism from the registry"})
        return publish(staging, entry.name, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_classifier_config(folder: Path, entry: Entry, version: str) -> str:
    """prism.json for a Hub classifier (the Hub has none), from the catalogue entry; returns its sha256."""
    write_json(folder / "prism.json", {"name": entry.name, "version": version, **(entry.classifier or {})})
    return sha256_file(folder / "prism.json")


def _hf_cached(spec: FileSpec) -> Path | None:
    """The file in the shared HF cache at the pinned commit, if the user already has it."""
    if not spec.pinned:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(spec.repo, spec.filename, revision=spec.revision)
    except Exception:  # noqa: BLE001 - a broken cache just means we download
        return None
    return Path(hit) if isinstance(hit, str) and Path(hit).is_file() else None


def _fetch(entry: Entry, spec: FileSpec, staging: Path, cached: Path | None) -> dict[str, Any]:
    """One file into staging/dest, verified; returns its manifest record."""
    record: dict[str, Any] = {"path": spec.dest, "repo": spec.repo, "filename": spec.filename, "revision": spec.revision}
    if cached is not None:
        notice(f"{spec.dest}: found in the shared Hugging Face cache")
        digest = sha256_file(cached)
        _check_sha(entry, spec, digest, spec.sha256, None)
        _link_or_copy(cached.resolve(), staging / spec.dest)
        return {**record, "sha256": digest, "size": (staging / spec.dest).stat().st_size,
                "source": "hf-cache", "sha256_source": "registry" if spec.sha256 else "first install"}
    meta = _metadata(entry, spec)
    expected_sha, source = spec.sha256, "registry"
    if expected_sha is None and meta.etag and SHA256_RE.match(meta.etag):
        expected_sha, source = meta.etag, "hub lfs oid"  # the Hub's ETag of an LFS file is its sha256
    size = meta.size or spec.size_bytes
    revision = spec.revision or meta.commit_hash
    part = cache_dir() / "downloads" / entry.name / f"{spec.dest}.{(revision or 'main')[:12]}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    _download(entry, spec, meta.location, part, size)
    digest = sha256_file(part)
    _check_sha(entry, spec, digest, expected_sha, part)
    _move(part, staging / spec.dest)
    return {**record, "revision": revision, "sha256": digest, "size": (staging / spec.dest).stat().st_size,
            "source": "download", "sha256_source": source if expected_sha else "first download"}


def _check_sha(entry: Entry, spec: FileSpec, digest: str, expected: str | None, bad: Path | None) -> None:
    if expected is None or digest == expected:
        return
    if bad is not None:
        bad.unlink(missing_ok=True)
        fate = "the bad file was removed (try the pull again)"
    else:
        fate = "the copy in the shared Hugging Face cache was not used (delete it with `hf cache rm`)"
    raise DownloadError(f"{entry.name}: checksum mismatch for {spec.filename}: got sha256 {digest[:16]}..., "
                        f"expected {expected[:16]}...; {fate}")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
        fsync_file(dst)


def _move(src: Path, dst: Path) -> None:
    fsync_file(src)
    try:
        os.replace(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = dst.with_name(dst.name + ".part")
        shutil.copyfile(src, tmp)
        fsync_file(tmp)
        os.replace(tmp, dst)
        src.unlink()


# ---- network ------------------------------------------------------------------------------------


def _with_retries(entry: Entry, spec: FileSpec, what: str, fn: Callable[[], T],
                  progress: Callable[[], int] = lambda: 0) -> T:
    """Run fn; on a transient failure sleep with exponential backoff and run it again.

    Attempts that moved `progress` (bytes on disk) reset the count: a long download on a flaky
    line keeps going as long as it advances.
    """
    import httpx2

    timeout, retries, backoff = _settings()
    attempt, seen = 0, progress()
    while True:
        try:
            return fn()
        except (_Retryable, httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError) as e:
            if _unreachable(e):  # no DNS, no route, nobody listening: waiting will not change it
                raise DownloadError(_network_message(entry, spec, what, e, timeout)) from None
            now = progress()
            if now > seen:
                attempt, seen = 0, now
            if attempt >= retries:
                raise DownloadError(_network_message(entry, spec, what, e, timeout)) from None
            delay = min(30.0, backoff * 2**attempt)
            attempt += 1
            notice(f"{spec.dest}: {_short(e)}; retrying in {delay:.1f}s ({attempt}/{retries})")
            time.sleep(delay)


def _unreachable(e: BaseException) -> bool:
    """A connect that failed for a reason retries cannot fix: the name does not resolve, the host refuses
    the connection or there is no route. Timeouts, dropped connections and 5xx stay retryable."""
    import socket

    seen: set[int] = set()
    c: BaseException | None = e
    while c is not None and id(c) not in seen:
        seen.add(id(c))
        if isinstance(c, (socket.gaierror, ConnectionRefusedError)):
            return True
        if isinstance(c, OSError) and c.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return True
        c = c.__cause__ or c.__context__
    return False


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:160]


def _network_message(entry: Entry, spec: FileSpec, what: str, e: BaseException, timeout: float) -> str:
    import httpx2

    from huggingface_hub import constants

    if isinstance(e, httpx2.TimeoutException):
        return f"{entry.name}: {what} {spec.filename} timed out (no data for {timeout:g}s; {TIMEOUT_ENV} sets the limit)"
    if isinstance(e, httpx2.ConnectError):
        host = _host(e) or urlsplit(constants.ENDPOINT).netloc
        return f"{entry.name}: cannot reach {host} (no network? {_short(e)})"
    return f"{entry.name}: {what} {spec.filename} failed: {_short(e)}"


def _host(e: BaseException) -> str | None:
    """The host a failed request was for (the Hub, or the CDN it redirected to), if httpx recorded it."""
    try:
        return str(e.request.url.netloc.decode())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - no request attached: the caller names the Hub endpoint
        return None


def _metadata(entry: Entry, spec: FileSpec) -> Any:
    """HEAD through huggingface_hub: size, ETag, commit and download location, or a clear error."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        FileMetadataError, GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RemoteEntryNotFoundError,
        RevisionNotFoundError,
    )

    timeout = _settings()[0]
    url = hf_hub_url(spec.repo, spec.filename, revision=spec.revision or "main")

    def head() -> Any:
        try:
            return get_hf_file_metadata(url, timeout=timeout)
        except (GatedRepoError, RevisionNotFoundError, RemoteEntryNotFoundError):
            raise
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else 0
            if status >= 500 or status == 429:
                raise _Retryable(f"HTTP {status} from the Hub") from None
            raise

    try:
        return _with_retries(entry, spec, "looking up", head)
    except GatedRepoError:
        raise DownloadError(_denied(entry, spec, 401)) from None
    except RevisionNotFoundError:
        raise DownloadError(f"{entry.name}: commit {spec.revision} not found in {spec.repo} (HTTP 404); "
                            "the registry entry is out of date") from None
    except RemoteEntryNotFoundError:
        raise DownloadError(f"{entry.name}: {spec.filename} not found in {spec.repo} at {spec.revision} (HTTP 404)") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else 0
        if status in (401, 403):
            raise DownloadError(_denied(entry, spec, status)) from None
        if status == 404:
            raise DownloadError(f"{entry.name}: {spec.repo}/{spec.filename} not found (HTTP 404)") from None
        raise DownloadError(f"{entry.name}: the Hub answered HTTP {status} for {spec.filename}") from None
    except OfflineModeIsEnabled:
        raise DownloadError("HF_HUB_OFFLINE is set, so huggingface_hub refuses the network; unset it to pull") from None
    except FileMetadataError as e:
        raise DownloadError(f"{entry.name}: not a Hugging Face Hub answer ({_short(e)})") from None


def _denied(entry: Entry, spec: FileSpec, status: int) -> str:
    return (f"{entry.name}: access to {spec.repo} denied (HTTP {status}): it is gated or private. Accept its terms at "
            f"https://huggingface.co/{spec.repo} and set a token: export HF_TOKEN=hf_... (or run `hf auth login`)")


def _download(entry: Entry, spec: FileSpec, url: str, part: Path, size: int | None) -> None:
    """Stream url into part, resuming what is there; retried as a whole on transient failures."""
    from huggingface_hub.utils import build_hf_headers, get_session

    from huggingface_hub import constants

    headers = dict(build_hf_headers())
    if urlsplit(url).netloc != urlsplit(constants.ENDPOINT).netloc:
        headers.pop("authorization", None)  # a signed CDN URL must not get the user's token
    headers["Accept-Encoding"] = "identity"
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    need = (size - have) if size is not None else 0
    free = shutil.disk_usage(part.parent).free
    if need > free:
        raise DownloadError(f"{entry.name}: not enough disk space for {spec.dest} (needs {_mb(need)}, "
                            f"{_mb(free)} free in {part.parent})")
    if have:
        notice(f"{spec.dest}: resuming at {_mb(have)} of {_mb(size)}")
    with _Progress(spec.dest, size, have) as bar:
        _with_retries(entry, spec, "downloading", lambda: _stream_once(get_session(), url, headers, part, size, bar, entry, spec),
                      progress=lambda: part.stat().st_size if part.exists() else 0)


def _stream_once(session: Any, url: str, headers: dict[str, str], part: Path, size: int | None, bar: "_Progress",
                 entry: Entry, spec: FileSpec) -> None:
    timeout = _settings()[0]
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have == size:
        return
    h = dict(headers)
    if have:
        h["Range"] = f"bytes={have}-"
    with session.stream("GET", url, headers=h, timeout=timeout, follow_redirects=True) as r:
        if r.status_code == 416:
            part.unlink(missing_ok=True)
            raise _Retryable("the server refused the resume range; starting over")
        if r.status_code >= 500 or r.status_code == 429:
            raise _Retryable(f"HTTP {r.status_code}")
        if r.status_code in (401, 403):
            raise DownloadError(_denied(entry, spec, r.status_code))
        if r.status_code >= 400:
            raise DownloadError(f"{entry.name}: HTTP {r.status_code} downloading {spec.filename}")
        if have and r.status_code != 206:
            have = 0  # the server ignored Range: start the file over
        bar.reset(have)
        try:
            with open(part, "ab" if have else "wb") as fo:
                for chunk in r.iter_bytes():  # as received: a drop loses no buffered bytes
                    fo.write(chunk)
                    bar.advance(len(chunk))
                fo.flush()
                os.fsync(fo.fileno())
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DownloadError(f"{entry.name}: disk full while writing {part} ({e.strerror}); free some space "
                                    "and pull again to resume") from None
            raise
    got = part.stat().st_size
    if size is not None and got < size:
        raise _Retryable(f"connection ended at {_mb(got)} of {_mb(size)}")
    if size is not None and got > size:
        part.unlink()
        raise DownloadError(f"{entry.name}: server sent more than the {size} bytes of {spec.filename}; removed it")


class _Progress:
    """A rich progress bar on stderr (size, rate, ETA) on a terminal; one line per file otherwise."""

    def __init__(self, label: str, total: int | None, start: int):
        self.label, self.total, self.done, self.t0 = label, total, start, time.monotonic()
        self._bar: Any = None

    def __enter__(self) -> "_Progress":
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)

            console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn(), console=console, transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done)
        else:
            notice(f"downloading {self.label} ({_mb(self.total)})")
        return self

    def reset(self, done: int) -> None:
        self.done = done
        if self._bar is not None:
            self._bar.update(self._task, completed=done)

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif exc[0] is None:
            secs = max(time.monotonic() - self.t0, 1e-6)
            notice(f"{self.label}: {_mb(self.done)} in {secs:.1f}s")
