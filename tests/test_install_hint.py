"""The missing-extra hint gives a command that works from where prism was installed.

Each case runs prism in a subprocess whose PYTHONPATH puts a real dist-info folder (METADATA,
direct_url.json) ahead of the environment's own, so importlib.metadata reads exactly that install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from hub_server import tiny_gguf  # noqa: E402

METADATA = """Metadata-Version: 2.1
Name: prism-cli
Version: 0.1.0
Requires-Dist: rich>=13
Requires-Dist: llama-cpp-python[server]>=0.3.16; extra == 'llama'
Requires-Dist: pytest>=8; extra == 'test'
Provides-Extra: llama
"""


def fake_install(tmp_path: Path, direct_url: dict | None) -> Path:
    site = tmp_path / "site"
    info = site / "prism_cli-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(METADATA, encoding="utf-8")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url), encoding="utf-8")
    return site


def hint(site: Path | None, cwd: Path) -> str:
    path = os.pathsep.join([str(site)] if site else []) + os.pathsep + str(ROOT)
    code = "from prism_cli.install_hint import install_command; print(install_command('llama'))"
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_index_install_gets_the_extras_own_requirement(tmp_path):
    got = hint(fake_install(tmp_path, None), tmp_path)
    assert got.endswith("install 'llama-cpp-python[server]>=0.3.16'")
    assert "prism-cli[" not in got


def test_editable_checkout_gets_pip_install_e_of_that_checkout(tmp_path):
    checkout = tmp_path / "my checkout"
    checkout.mkdir()
    site = fake_install(tmp_path, {"url": checkout.as_uri(), "dir_info": {"editable": True}})
    assert hint(site, tmp_path).endswith(f"install -e '{checkout}[llama]'")
    assert hint(site, checkout).endswith("install -e '.[llama]'")  # run from inside the checkout


def test_non_editable_local_install_gets_the_requirement(tmp_path):
    site = fake_install(tmp_path, {"url": (tmp_path / "src").as_uri(), "dir_info": {}})
    assert hint(site, tmp_path).endswith("install 'llama-cpp-python[server]>=0.3.16'")


@pytest.mark.parametrize("cmd", ["chat", "check"])
def test_missing_llama_cpp_error_names_the_working_command(tmp_path, cmd):
    """A real ImportError of llama_cpp (a package that raises on import shadows the installed one)."""
    site = fake_install(tmp_path, None)
    (site / "llama_cpp").mkdir()
    (site / "llama_cpp" / "__init__.py").write_text("raise ImportError('no llama here')\n", encoding="utf-8")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(tiny_gguf(n_floats=16, name="Llama Guard 3 1B"))
    args = ["chat", str(gguf)] if cmd == "chat" else ["check", "--moderator", str(gguf), "--text", "hi"]
    r = subprocess.run([sys.executable, "-m", "prism_cli", *args], input="hello\n", capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}, timeout=120)
    assert r.returncode in (2, 3), r.stderr
    assert "install 'llama-cpp-python[server]>=0.3.16'" in r.stderr, r.stderr
    assert "prism-cli[llama]" not in r.stderr and "Traceback" not in r.stderr
