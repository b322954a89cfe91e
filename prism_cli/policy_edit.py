"""`prism policy edit`: edit a copy, validate it, and only then replace the policy.

The editor works on a private copy (a 0700 temp folder), so a half-saved or invalid file is never
the policy that `check` and `chat` read. An edit that does not validate is offered back to the
editor on a terminal; otherwise, or when declined, the old policy stays and the edit is kept in
the temp folder (nothing typed is lost).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from prism_cli import out
from prism_cli.editor import run_editor
from prism_cli.errors import PolicyError
from prism_cli.paths import shipped_policies_dir
from prism_cli.policy_store import find_policy, load_policy, read_text, replace_policy_text


def edit_policy(name_or_path: str) -> Path:
    """Edit the policy's file in the user's editor; returns its path. Raises PolicyError when the
    policy is shipped, or when an invalid edit was not fixed (the file is then unchanged)."""
    path = find_policy(name_or_path)
    if path.resolve().parent == shipped_policies_dir().resolve():
        raise PolicyError(f"'{path.stem}' is a shipped policy and is not edited in place; make your own: "
                          f"prism policy init my-{path.stem} --from {path.stem}, then prism policy edit my-{path.stem}")
    if not path.is_file():
        raise PolicyError(f"{name_or_path}: not a regular file; edit it another way")
    original = read_text(path)
    work = Path(tempfile.mkdtemp(prefix="prism-policy-")) / path.name
    work.write_text(original, encoding="utf-8")
    while True:
        try:
            run_editor(work)
        except Exception:
            shutil.rmtree(work.parent, ignore_errors=True)
            raise
        try:
            text = read_text(work)
            if text == original:
                _notice(f"no changes; {path} is as it was")
                shutil.rmtree(work.parent, ignore_errors=True)
                return path
            replace_policy_text(path, text)
        except PolicyError as e:
            kept = f"{path} is unchanged; your edit is kept in {work}"
            if not _interactive():
                raise PolicyError(f"{e} -- {kept}") from None
            if _ask_again(str(e)):
                continue
            raise PolicyError(kept) from None
        shutil.rmtree(work.parent, ignore_errors=True)
        p = load_policy(str(path))
        _notice(f"saved {path} ({p.name}: {len(p.categories)} categories)")
        return path


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask_again(error: str) -> bool:
    """Show the error and ask (on stderr) whether to reopen the editor; Enter means yes."""
    out.error(error)
    print("Edit again? [Y/n] (n keeps the old policy) ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return bool(answer) and answer.strip().lower() in ("", "y", "yes")


def _notice(msg: str) -> None:
    out.notice(msg)
