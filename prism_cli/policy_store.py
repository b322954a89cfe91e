"""Finding, reading and listing policies: shipped ones, the user's own, or any YAML file."""

from __future__ import annotations

from pathlib import Path

from prism_cli.errors import InputError, PolicyError, suggest
from prism_cli.inputs import decode, read_bounded
from prism_cli.outputs import write_atomic
from prism_cli.paths import shipped_policies_dir, user_policies_dir
from prism_cli.policy import Policy, parse_policy

DEFAULT_POLICY = "default"
_MAX_BYTES = 1_000_000


def policy_dirs() -> list[Path]:
    """User policies shadow shipped ones of the same name."""
    return [user_policies_dir(), shipped_policies_dir()]


def find_policy(name_or_path: str) -> Path:
    """A policy's file from a name (user policies first) or a path. A bare file name that is not in the
    current folder is looked up among the policies too, so `validate family.yaml` finds what
    `policy init family` wrote."""
    p = Path(name_or_path).expanduser()
    if p.suffix in (".yaml", ".yml") or p.exists():
        if p.exists() and not p.is_dir():  # a file, or a pipe such as <(...)
            return p
        stored = [d / p.name for d in policy_dirs()] if p.name == name_or_path else []
        for f in stored:
            if f.is_file():
                return f
        where = f" (nor in {user_policies_dir()})" if stored else ""
        raise PolicyError(f"{name_or_path}: no such policy file{where}")
    for d in policy_dirs():
        for ext in (".yaml", ".yml"):
            f = d / f"{name_or_path}{ext}"
            if f.is_file():
                return f
    names = ", ".join(sorted(list_policies())) or "none"
    raise PolicyError(f"unknown policy {name_or_path!r} ({suggest(name_or_path, list_policies())}available: {names}; "
                      "or give a YAML file)")


def read_text(path: Path) -> str:
    """The policy's text through the shared reader core: one bounded read, strict UTF-8, no NUL bytes."""
    try:
        return decode(read_bounded(path, _MAX_BYTES, what="policy"), str(path))
    except PolicyError:
        raise
    except InputError as e:
        raise PolicyError(str(e)) from None


def load_policy(name_or_path: str | None = None, _chain: tuple[Path, ...] = ()) -> Policy:
    """Load and validate a policy, following `extends` (shipped name or relative path). The configured
    default is resolved in build.py, not here."""
    spec = name_or_path or DEFAULT_POLICY
    path = find_policy(str(spec))
    path = path.resolve() if path.is_file() else path  # a pipe (<(...)) has no other name to resolve to
    return _parse(read_text(path), path, _chain)


def _parse(text: str, path: Path, chain: tuple[Path, ...]) -> Policy:
    if path in chain:
        raise PolicyError(f"{path}: 'extends' forms a cycle")

    def resolve(base_spec: str) -> Policy:
        rel = path.parent / base_spec
        return load_policy(str(rel) if rel.is_file() else base_spec, chain + (path,))

    return parse_policy(text, str(path), resolve=resolve)


def replace_policy_text(path: Path, text: str) -> None:
    """Validate `text` as the policy at `path` (its extends resolved from there), then replace the file
    atomically: a policy that does not validate is never written."""
    _parse(text, path.resolve(), ())
    write_atomic(path, text)


def list_policies() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in reversed(policy_dirs()):
        if d.is_dir():
            for f in sorted(d.glob("*.y*ml")):
                found[f.stem] = f
    return found


def init_policy(name: str, base: str, dest: Path | None, full: bool, force: bool) -> Path:
    """Write a starter policy: a short file that `extends` the base (or, with full, a complete copy)."""
    import re

    import yaml

    from prism_cli.policy import policy_to_dict

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise PolicyError(f"policy name {name!r}: use letters, digits, '-', '_' or '.'")
    base_policy = load_policy(base)
    target = dest or (user_policies_dir() / f"{name}.yaml")
    if target.exists() and not force:
        raise PolicyError(f"{target}: already exists (use --force to overwrite)")
    if full:
        data = policy_to_dict(base_policy)
        data["name"] = name
        body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        text = f"# A copy of the '{base_policy.name}' policy. Edit freely; validate with: prism policy validate {target}\n" + body
    else:
        example = base_policy.categories[0]
        text = (
            f"# My policy: everything in '{base_policy.name}', with my changes below.\n"
            f"# Categories listed here override the base by id (only the keys you give);\n"
            f"# new ids add categories (they need name and description).\n"
            f"# See every category with: prism policy show {base_policy.name}\n"
            f"name: {name}\n"
            f"extends: {base_policy.name}\n"
            f"description: {base_policy.description!r}\n"
            f"categories:\n"
            f"  - id: {example.id}            # {example.name}\n"
            f"    threshold: {example.threshold}\n"
            f"    action: {example.action}      # block | warn | log\n"
            f"  # - id: no-spoilers\n"
            f"  #   name: Spoilers\n"
            f"  #   description: Plot twists and endings of films and books.\n"
            f"  #   rules:\n"
            f"  #     keywords: [the ending, plot twist]\n"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    replace_policy_text(target, text)  # what we write must validate before it becomes visible
    return target
