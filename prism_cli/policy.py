"""The acceptable use policy: categories, thresholds and actions, parsed and validated from YAML.

Parsing takes text, not paths (the core does no I/O; policy_store.py reads files).
Every validation error names the source, the line and the offending key, because a
policy is something users write by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from prism_cli.errors import PolicyError
from prism_cli.verdict import OVERALL
from prism_cli.yaml_lines import KeyPath, compose, key_path, line_of

ROLES = ("prompt", "response")
ACTIONS = ("block", "warn", "log")
ON_ERROR = ("block",)  # prism fails closed: a text no moderator could check is never released
CONTROVERSIAL = ("block", "warn", "allow")
"""What a guard's "Controversial" verdict (Qwen3Guard) means for a category: counts as unsafe, can only
warn (reported beside the category's own score, never blocking), or is ignored."""


@dataclass(frozen=True)
class Rules:
    """Keyword and regex rules that flag a category without any model (case-folded, NFKC)."""

    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.keywords or self.patterns)


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    description: str
    applies_to: tuple[str, ...] = ROLES
    threshold: float = 0.5
    action: str = "block"
    enabled: bool = True
    rules: Rules = Rules()
    controversial: str = "block"


@dataclass(frozen=True)
class Overall:
    """Acting on the moderator's overall P(unsafe), whatever category it falls in."""

    threshold: float
    action: str = "block"
    applies_to: tuple[str, ...] = ROLES


@dataclass(frozen=True)
class Stream:
    """Streaming gate: check every `window` tokens (and once at `holdback` + 1, so a reply starts to show early);
    keep `holdback` approved tokens unseen until the next check."""

    window: int = 16
    holdback: int = 8


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    based_on: str
    categories: tuple[Category, ...]
    threshold: float = 0.5
    action: str = "block"
    on_error: str = "block"
    overall: Overall | None = None
    moderator: str | None = None
    stream: Stream = Stream()
    source: str = "<policy>"

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:  # also for policies built in Python, not parsed
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}: prism fails closed")

    def category(self, cid: str) -> Category | None:
        for c in self.categories:
            if c.id == cid:
                return c
        return None

    def active(self, role: str) -> list[Category]:
        return [c for c in self.categories if c.enabled and role in c.applies_to]

    def label(self, cid: str) -> str:
        """A category's display name; "unsafe" for the overall score."""
        c = self.category(cid)
        return c.name if c else ("unsafe (overall)" if cid == OVERALL else cid)

    def labels(self, ids: list[str]) -> str:
        """Flagged ids as a user reads them: "Violent Crimes [S1], unsafe (overall)"."""
        return ", ".join(self.label(c) + ("" if c == OVERALL else f" [{c}]") for c in ids)


class _Checker:
    def __init__(self, source: str, lines: dict[KeyPath, int]):
        self.source, self.lines = source, lines

    def fail(self, path: KeyPath, msg: str) -> PolicyError:
        line = line_of(self.lines, path)
        where = f"{self.source}:{line}" if line else self.source
        return PolicyError(f"{where}: {key_path(path)}: {msg}")

    def mapping(self, value: Any, path: KeyPath, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {_yaml_type(value)}")
        for k in value:
            if str(k) not in allowed:
                raise self.fail(path + (str(k),), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for k in sorted(required):
            if k not in value:
                raise self.fail(path, f"missing required key '{k}'")
        return value

    def string(self, value: Any, path: KeyPath, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise self.fail(path, f"must be a non-empty string, got {_yaml_type(value)}")
        return value.strip()

    def prob(self, value: Any, path: KeyPath) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise self.fail(path, f"must be a number between 0 and 1, got {value!r}")
        return float(value)

    def choice(self, value: Any, path: KeyPath, options: tuple[str, ...]) -> str:
        if value not in options:
            raise self.fail(path, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def count(self, value: Any, path: KeyPath, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(path, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def roles(self, value: Any, path: KeyPath) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise self.fail(path, f"must be 'prompt', 'response' or a list of them, got {value!r}")
        for i, r in enumerate(items):
            self.choice(r, path + (i,) if isinstance(value, list) else path, ROLES)
        return tuple(dict.fromkeys(items))

    def strings(self, value: Any, path: KeyPath) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list of strings, got {_yaml_type(value)}")
        return tuple(self.string(v, path + (i,)) for i, v in enumerate(value))


def _yaml_type(v: Any) -> str:
    """What a YAML value is, in the words a policy error uses ("a mapping", "a list")."""
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(v), repr(v))


# ---------------------------------------------------------------- parsing

_TOP = {"name", "description", "based_on", "extends", "moderator", "defaults", "overall", "stream", "categories"}
_DEFAULTS = {"threshold", "action", "on_error", "controversial"}
_CATEGORY = {"id", "name", "description", "applies_to", "threshold", "action", "enabled", "rules", "controversial"}
_RULES = {"keywords", "patterns"}


def parse_policy(
    text: str,
    source: str = "<policy>",
    base: Policy | None = None,
    resolve: Callable[[str], Policy] | None = None,
) -> Policy:
    """Parse one policy document. Categories merge by id onto `base`, or onto what
    `resolve(extends)` returns when the document names a policy it extends."""
    data, lines = compose(text, source, "a policy", PolicyError)
    ck = _Checker(source, lines)
    if data is None:
        raise PolicyError(f"{source}: empty policy")
    if base is None and resolve is not None and isinstance(data, dict) and "extends" in data:
        base = resolve(ck.string(data["extends"], ("extends",)))
    required = {"name", "categories"} if base is None else {"name"}
    d = ck.mapping(data, (), _TOP, required)
    if base is None and "extends" in d:
        raise ck.fail(("extends",), "cannot follow 'extends' here (load the policy with policy_store.load_policy)")

    defaults = ck.mapping(d.get("defaults", {}) or {}, ("defaults",), _DEFAULTS)
    threshold = ck.prob(defaults.get("threshold", base.threshold if base else 0.5), ("defaults", "threshold"))
    action = ck.choice(defaults.get("action", base.action if base else "block"), ("defaults", "action"), ACTIONS)
    on_error = defaults.get("on_error", base.on_error if base else "block")
    if on_error not in ON_ERROR:
        raise ck.fail(("defaults", "on_error"), f"must be block, got {on_error!r}: prism fails closed, so a text "
                      "that no moderator could check is blocked (exit 3), never warned about or allowed")
    contro = ck.choice(defaults.get("controversial", "block"), ("defaults", "controversial"), CONTROVERSIAL)

    overall = base.overall if base else None
    if "overall" in d:
        if d["overall"] is None:
            overall = None
        else:
            o = ck.mapping(d["overall"], ("overall",), {"threshold", "action", "applies_to"}, {"threshold"})
            overall = Overall(
                threshold=ck.prob(o["threshold"], ("overall", "threshold")),
                action=ck.choice(o.get("action", "block"), ("overall", "action"), ACTIONS),
                applies_to=ck.roles(o.get("applies_to", list(ROLES)), ("overall", "applies_to")),
            )

    stream = base.stream if base else Stream()
    if "stream" in d:
        s = ck.mapping(d["stream"] or {}, ("stream",), {"window", "holdback"})
        stream = Stream(
            window=ck.count(s.get("window", stream.window), ("stream", "window"), 1),
            holdback=ck.count(s.get("holdback", stream.holdback), ("stream", "holdback"), 0),
        )

    moderator = base.moderator if base else None
    if "moderator" in d:
        moderator = None if d["moderator"] is None else ck.string(d["moderator"], ("moderator",))

    cats: dict[str, Category] = {c.id: c for c in base.categories} if base else {}
    raw = d.get("categories", []) or []
    if not isinstance(raw, list):
        raise ck.fail(("categories",), f"must be a list of categories, got {_yaml_type(raw)}")
    if base is None and not raw:
        raise ck.fail(("categories",), "a policy needs at least one category")
    seen: set[str] = set()
    for i, item in enumerate(raw):
        p: KeyPath = ("categories", i)
        c = ck.mapping(item, p, _CATEGORY, {"id"})
        cid = ck.string(c["id"] if not isinstance(c["id"], (int, float)) else str(c["id"]), p + ("id",))
        if cid == OVERALL:
            raise ck.fail(p + ("id",), f"'{OVERALL}' is reserved for the overall score (use the 'overall' section)")
        if cid in seen:
            raise ck.fail(p + ("id",), f"duplicate category id {cid!r}")
        seen.add(cid)
        prev = cats.get(cid)
        if prev is None:
            for k in ("name", "description"):
                if k not in c:
                    raise ck.fail(p, f"missing required key '{k}' for new category {cid!r}")
        rules = prev.rules if prev else Rules()
        if "rules" in c:
            r = ck.mapping(c["rules"] or {}, p + ("rules",), _RULES)
            kws = ck.strings(r.get("keywords", []), p + ("rules", "keywords"))
            pats = ck.strings(r.get("patterns", []), p + ("rules", "patterns"))
            for j, pat in enumerate(pats):
                _check_regex(ck, pat, p + ("rules", "patterns", j))
            rules = Rules(kws, pats)
        enabled = c.get("enabled", prev.enabled if prev else True)
        if not isinstance(enabled, bool):
            raise ck.fail(p + ("enabled",), f"must be true or false, got {enabled!r}")
        cats[cid] = Category(
            id=cid,
            name=ck.string(c["name"], p + ("name",)) if "name" in c else prev.name,
            description=ck.string(c["description"], p + ("description",)) if "description" in c else prev.description,
            applies_to=ck.roles(c["applies_to"], p + ("applies_to",)) if "applies_to" in c else (prev.applies_to if prev else ROLES),
            threshold=ck.prob(c["threshold"], p + ("threshold",)) if "threshold" in c else (prev.threshold if prev else threshold),
            action=ck.choice(c["action"], p + ("action",), ACTIONS) if "action" in c else (prev.action if prev else action),
            enabled=enabled,
            rules=rules,
            controversial=ck.choice(c["controversial"], p + ("controversial",), CONTROVERSIAL) if "controversial" in c
            else (prev.controversial if prev and "controversial" not in defaults else contro),
        )

    return Policy(
        name=ck.string(d["name"], ("name",)),
        description=ck.string(d.get("description", base.description if base else ""), ("description",), allow_empty=True),
        based_on=ck.string(d.get("based_on", base.based_on if base else ""), ("based_on",), allow_empty=True),
        categories=tuple(cats.values()),
        threshold=threshold,
        action=action,
        on_error=on_error,
        overall=overall,
        moderator=moderator,
        stream=stream,
        source=source,
    )


def _check_regex(ck: _Checker, pattern: str, path: KeyPath) -> None:
    from prism_cli.patterns import PatternError, check

    try:
        check(pattern)
    except PatternError as e:
        raise ck.fail(path, f"invalid regular expression (RE2 syntax): {e}") from None


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    """The resolved policy (after `extends`) in the YAML schema, for `policy show --yaml` and `init --full`."""
    cats = []
    for c in policy.categories:
        d: dict[str, Any] = {"id": c.id, "name": c.name, "description": c.description}
        if c.applies_to != ROLES:
            d["applies_to"] = list(c.applies_to)
        d["threshold"] = c.threshold
        d["action"] = c.action
        if not c.enabled:
            d["enabled"] = False
        if c.controversial != "block":
            d["controversial"] = c.controversial
        if c.rules:
            d["rules"] = {k: list(v) for k, v in (("keywords", c.rules.keywords), ("patterns", c.rules.patterns)) if v}
        cats.append(d)
    out: dict[str, Any] = {
        "name": policy.name,
        "description": policy.description,
        "based_on": policy.based_on,
    }
    if policy.moderator:
        out["moderator"] = policy.moderator
    out["defaults"] = {"threshold": policy.threshold, "action": policy.action, "on_error": policy.on_error}
    if policy.overall:
        out["overall"] = {"threshold": policy.overall.threshold, "action": policy.overall.action}
        if policy.overall.applies_to != ROLES:
            out["overall"]["applies_to"] = list(policy.overall.applies_to)
    out["stream"] = {"window": policy.stream.window, "holdback": policy.stream.holdback}
    out["categories"] = cats
    return out
