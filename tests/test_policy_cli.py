"""`prism policy init | validate | path | edit` as a user runs them, in subprocesses with their own PRISM_HOME.

`edit` runs a real editor: a small shell script set as $EDITOR / $VISUAL that writes the next prepared
version of the file, so each test decides exactly what the "user" saved.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

EDITOR_SCRIPT = """#!/bin/sh
n=$(cat "$EDITS/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$EDITS/count"
echo "$1" >> "$EDITS/opened"
cp "$EDITS/$n.yaml" "$1"
"""

GOOD_EDIT = """name: family
extends: strict
description: The kids' laptop.
categories:
  - id: S12
    threshold: 0.05
"""

BROKEN_YAML = """name: family
extends: strict
categories: [
"""

BAD_KEY = """name: family
extends: strict
categories:
  - id: S12
    action: shout
"""


@pytest.fixture()
def env(tmp_path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("VISUAL", "EDITOR")}
    # TMPDIR: the copies `edit` keeps after a rejected edit land in the test's own folder
    e.update(PRISM_HOME=str(tmp_path / "home"), NO_COLOR="1", PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path))
    return e


def prism(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prism_cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def errors(r: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in r.stderr
    return [ln for ln in r.stderr.splitlines() if ln.startswith("prism: error:")]


def editor(tmp_path: Path, env: dict[str, str], *versions: str, var: str = "EDITOR") -> Path:
    """Install the scripted editor; the i-th time it is opened it saves versions[i]."""
    edits = tmp_path / "edits"
    edits.mkdir()
    for i, text in enumerate(versions, 1):
        (edits / f"{i}.yaml").write_text(text, encoding="utf-8")
    script = tmp_path / "fake-editor"
    script.write_text(EDITOR_SCRIPT, encoding="utf-8")
    script.chmod(0o755)
    env.update({var: str(script), "EDITS": str(edits)})
    return edits


def opened(edits: Path) -> int:
    f = edits / "count"
    return int(f.read_text()) if f.exists() else 0


@pytest.fixture()
def family(tmp_path, env) -> Path:
    r = prism(env, "policy", "init", "family", "--from", "strict")
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip())


def test_readme_sequence_init_then_validate_file_name(tmp_path, env, family):
    """The README's own lines, run in a folder that has no family.yaml."""
    assert family == tmp_path / "home" / "policies" / "family.yaml" and family.is_file()
    from prism_cli.policy_store import load_policy

    n = len(load_policy("strict").categories)  # family extends strict and changes one
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    for spec in ("family.yaml", "family", str(family)):
        r = prism(env, "policy", "validate", spec, cwd=cwd)
        assert r.returncode == 0, (spec, r.stderr)
        assert r.stdout.strip() == f"{family}: ok (family: {n} categories)"


def test_init_says_where_it_wrote(env):
    r = prism(env, "policy", "init", "kids", "--from", "strict")
    assert r.returncode == 0
    path = r.stdout.strip()
    assert path.endswith("/policies/kids.yaml") and f"to {path}" in r.stderr
    assert "prism policy edit kids" in r.stderr


def test_validate_missing_file_and_bad_policy_are_one_line_errors(tmp_path, env):
    r = prism(env, "policy", "validate", "nope.yaml", cwd=tmp_path)
    assert r.returncode == 2 and errors(r) == [
        f"prism: error: nope.yaml: no such policy file (nor in {tmp_path / 'home' / 'policies'})"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_KEY, encoding="utf-8")
    r = prism(env, "policy", "validate", "strict", str(bad))
    assert r.returncode == 2
    assert r.stdout.startswith(str(ROOT / "default_policies" / "strict.yaml") + ": ok")
    assert len(errors(r)) == 1 and f"{bad}:5: categories[0].action" in errors(r)[0]


def test_a_file_in_the_current_folder_wins_over_a_stored_policy(tmp_path, env, family):
    local = tmp_path / "family.yaml"
    local.write_text("name: local-family\nextends: minimal\n", encoding="utf-8")
    r = prism(env, "policy", "validate", "family.yaml", cwd=tmp_path)
    assert r.returncode == 0 and "local-family" in r.stdout


def test_policy_path(tmp_path, env, family):
    assert prism(env, "policy", "path", "family").stdout.strip() == str(family)
    assert prism(env, "policy", "path", "strict").stdout.strip() == str(ROOT / "default_policies" / "strict.yaml")
    r = prism(env, "policy", "path", "famliy")
    assert r.returncode == 2 and "did you mean family?" in errors(r)[0]


def test_edit_saves_a_valid_change(tmp_path, env, family):
    edits = editor(tmp_path, env, GOOD_EDIT)
    r = prism(env, "policy", "edit", "family")
    assert r.returncode == 0, r.stderr
    assert family.read_text(encoding="utf-8") == GOOD_EDIT
    assert f"saved {family}" in r.stderr
    assert (edits / "opened").read_text().strip().endswith("/family.yaml")  # a copy with the same name
    assert not Path((edits / "opened").read_text().strip()).exists()  # temp copy removed
    shown = prism(env, "policy", "show", "family", "--yaml")
    assert "threshold: 0.05" in shown.stdout


@pytest.mark.parametrize("text,where", [(BROKEN_YAML, "family.yaml:4"), (BAD_KEY, "family.yaml:5: categories[0].action")])
def test_edit_never_writes_an_invalid_policy(tmp_path, env, family, text, where):
    before = family.read_text(encoding="utf-8")
    edits = editor(tmp_path, env, text)
    r = prism(env, "policy", "edit", "family")
    assert r.returncode == 2
    (line,) = errors(r)
    assert where in line and "is unchanged" in line
    assert family.read_text(encoding="utf-8") == before
    kept = Path((edits / "opened").read_text().strip())
    assert str(kept) in line and kept.read_text(encoding="utf-8") == text  # the user's typing is not lost
    assert opened(edits) == 1  # not a terminal: no second round


def test_edit_without_changes_and_with_a_failing_editor(tmp_path, env, family):
    before = family.read_text(encoding="utf-8")
    r = prism({**env, "EDITOR": "true"}, "policy", "edit", "family")
    assert r.returncode == 0 and "no changes" in r.stderr
    r = prism({**env, "EDITOR": "false"}, "policy", "edit", "family")
    assert r.returncode == 2 and "exited with status 1" in errors(r)[0]
    r = prism({**env, "EDITOR": "no-such-editor-xyz"}, "policy", "edit", "family")
    assert r.returncode == 2 and "'no-such-editor-xyz' not found" in errors(r)[0]
    assert family.read_text(encoding="utf-8") == before


def test_visual_wins_over_editor_and_may_carry_arguments(tmp_path, env, family):
    editor(tmp_path, env, GOOD_EDIT, var="VISUAL")
    env["EDITOR"] = "false"
    env["VISUAL"] = f"sh {env['VISUAL']}"  # an editor command with an argument, as in "code --wait"
    r = prism(env, "policy", "edit", "family")
    assert r.returncode == 0, r.stderr
    assert family.read_text(encoding="utf-8") == GOOD_EDIT


def test_shipped_policy_is_not_edited_in_place(env):
    r = prism({**env, "EDITOR": "true"}, "policy", "edit", "strict")
    assert r.returncode == 2 and "prism policy init my-strict --from strict" in errors(r)[0]


def run_on_terminal(env: dict[str, str], args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run prism with stdin and stderr on a real pseudo-terminal, answering each 'Edit again?' prompt."""
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "prism_cli", *args], env=env, stdin=slave, stderr=slave,
                         stdout=subprocess.PIPE, close_fds=True)
    os.close(slave)
    out, pending, deadline = b"", list(answers), time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if pending and out.count(b"Edit again?") > len(answers) - len(pending):
                os.write(master, pending.pop(0).encode() + b"\n")
        elif p.poll() is not None:
            break
    p.wait(timeout=30)
    os.close(master)
    return p.returncode, out.decode(errors="replace")


def test_on_a_terminal_an_invalid_edit_is_offered_back_to_the_editor(tmp_path, env, family):
    edits = editor(tmp_path, env, BROKEN_YAML, GOOD_EDIT)
    code, out = run_on_terminal(env, ["policy", "edit", "family"], ["y"])
    assert code == 0, out
    assert "family.yaml:4" in out and "Edit again?" in out
    assert opened(edits) == 2
    assert family.read_text(encoding="utf-8") == GOOD_EDIT


def test_on_a_terminal_declining_keeps_the_old_policy(tmp_path, env, family):
    before = family.read_text(encoding="utf-8")
    edits = editor(tmp_path, env, BAD_KEY)
    code, out = run_on_terminal(env, ["policy", "edit", "family"], ["n"])
    assert code == 2, out
    assert "is unchanged; your edit is kept in" in out
    assert opened(edits) == 1 and family.read_text(encoding="utf-8") == before
