"""Policy parsing and validation: shipped policies load; every error names file, line and key."""

from __future__ import annotations

import pytest

from prism_cli.errors import PolicyError
from prism_cli.policy import parse_policy, policy_to_dict
from prism_cli.policy_store import init_policy, list_policies, load_policy

MINI = """\
name: mini
description: test
based_on: nothing
categories:
  - id: a
    name: Alpha
    description: first
    threshold: 0.4
  - id: b
    name: Beta
    description: second
    applies_to: prompt
    action: warn
"""


def test_shipped_policies_load_and_follow_a_taxonomy():
    names = set(list_policies())
    assert {"default", "strict", "minimal"} <= names
    default = load_policy("default")
    ids = [c.id for c in default.categories]
    assert ids[:14] == [f"S{i}" for i in range(1, 15)]
    assert "jailbreak" in ids and default.category("jailbreak").applies_to == ("prompt",)
    for name in names:
        p = load_policy(name)
        assert p.based_on, f"{name} must say what it is based on"
        assert p.on_error == "block"
        assert all(len(c.description) > 30 for c in p.categories), "descriptions go verbatim into guard prompts"


def test_shipped_policies_only_tighten_from_minimal_to_default_to_strict():
    """A user who moves to a stricter policy must never unblock something: per category and overall."""
    minimal, default, strict = (load_policy(n) for n in ("minimal", "default", "strict"))
    for laxer, tighter in ((minimal, default), (default, strict)):
        assert tighter.overall.threshold <= laxer.overall.threshold
        for c in laxer.categories:
            t = tighter.category(c.id)
            assert t.threshold <= c.threshold, (laxer.name, tighter.name, c.id)
            assert not (c.action == "block" and t.action != "block"), (laxer.name, tighter.name, c.id)
    assert default.category("S4").threshold <= minimal.category("S4").threshold


def test_strict_extends_default_with_lower_thresholds_and_blocks_sexual_content():
    default, strict = load_policy("default"), load_policy("strict")
    assert default.category("S12").action == "warn" and strict.category("S12").action == "block"
    assert strict.category("S1").threshold < default.category("S1").threshold
    assert strict.category("S5").threshold == default.category("S5").threshold  # inherited untouched
    assert {"harassment", "profanity"} <= {c.id for c in strict.categories}
    assert strict.category("profanity").rules.keywords
    minimal = load_policy("minimal")
    assert len(minimal.categories) < len(default.categories)


def test_parse_defaults_and_fields():
    p = parse_policy(MINI, "mini.yaml")
    assert p.category("a").threshold == 0.4 and p.category("a").applies_to == ("prompt", "response")
    assert p.category("b").action == "warn" and p.category("b").threshold == 0.5
    assert [c.id for c in p.active("response")] == ["a"]
    assert p.overall is None and p.stream.window >= 1


@pytest.mark.parametrize(
    "mutation, expect",
    [
        (("    threshold: 0.4", "    threshold: high"), "mini.yaml:8: categories[0].threshold: must be a number between 0 and 1"),
        (("    threshold: 0.4", "    threshold: 1.5"), "mini.yaml:8: categories[0].threshold"),
        (("    action: warn", "    action: shout"), "mini.yaml:13: categories[1].action: must be one of block, warn, log"),
        (("    action: warn", "    controversial: maybe"), "mini.yaml:13: categories[1].controversial: must be one of block, warn, allow"),
        (("    applies_to: prompt", "    applies_to: output"), "mini.yaml:12: categories[1].applies_to"),
        (("description: test", "descripton: test"), "mini.yaml:2: descripton: unknown key"),
        (("    name: Beta", "    name: Beta\n    colour: red"), "mini.yaml:11: categories[1].colour: unknown key"),
        (("  - id: b", "  - id: a"), "mini.yaml:9: categories[1].id: duplicate category id 'a'"),
        (("    name: Alpha\n", ""), "categories[0]: missing required key 'name'"),
        (("name: mini", "name: mini\nname: again"), "mini.yaml:2: name: duplicate key"),
        (("based_on: nothing", "based_on: [unclosed"), "mini.yaml:"),
    ],
)
def test_validation_errors_name_file_line_and_key(mutation, expect):
    old, new = mutation
    assert old in MINI
    with pytest.raises(PolicyError) as e:
        parse_policy(MINI.replace(old, new, 1), "mini.yaml")
    msg = str(e.value)
    assert expect in msg and "\n" not in msg


def test_categories_must_be_a_list():
    with pytest.raises(PolicyError, match=r"^m.yaml:2: categories: must be a list of categories, got 5$"):
        parse_policy("name: m\ncategories: 5\n", "m.yaml")


def test_rules_are_validated_as_regexes():
    bad = MINI.replace("    threshold: 0.4", "    rules:\n      patterns: ['(unclosed']")
    with pytest.raises(PolicyError, match=r"mini.yaml:9: categories\[0\].rules.patterns\[0\]: invalid regular expression"):
        parse_policy(bad, "mini.yaml")


def test_extending_policy_overrides_by_id_and_adds(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(
        "name: mine\nextends: default\ncategories:\n"
        "  - id: S12\n    action: block\n    threshold: 0.2\n"
        "  - id: S8\n    enabled: false\n"
        "  - id: spoilers\n    name: Spoilers\n    description: Endings of films.\n    rules: {keywords: [plot twist]}\n"
        "  - id: newcat\n    threshold: 0.1\n"
    )
    with pytest.raises(PolicyError, match=r"mine.yaml:\d+: categories\[3\]: missing required key 'name' for new category 'newcat'"):
        load_policy(str(f))
    f.write_text(f.read_text().rsplit("  - id: newcat", 1)[0])
    p = load_policy(str(f))
    assert p.name == "mine" and p.moderator is None  # shipped policies leave the choice to config
    assert p.category("S12").action == "block" and p.category("S12").threshold == 0.2
    assert p.category("S12").description.startswith("Depictions")  # kept from the base
    assert p.category("S8").enabled is False and "S8" not in [c.id for c in p.active("prompt")]
    assert p.category("spoilers").rules.keywords == ("plot twist",)


def test_extends_cycle_and_unknown_base(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("name: a\nextends: b.yaml\n")
    b.write_text("name: b\nextends: a.yaml\n")
    with pytest.raises(PolicyError, match="cycle"):
        load_policy(str(a))
    a.write_text("name: a\nextends: no-such-policy\n")
    with pytest.raises(PolicyError, match="unknown policy 'no-such-policy'"):
        load_policy(str(a))


@pytest.mark.parametrize(
    "content, expect",
    [(b"", "empty policy"), (b"\x00\x01binary", ":1: binary data"), (b"name: \xff\n", ":1: invalid UTF-8")],
)
def test_bad_files(tmp_path, content, expect):
    f = tmp_path / "p.yaml"
    f.write_bytes(content)
    with pytest.raises(PolicyError, match=expect):
        load_policy(str(f))


def test_round_trip_through_dict_and_init(tmp_path, monkeypatch):
    monkeypatch.setenv("PRISM_HOME", str(tmp_path))
    import yaml

    strict = load_policy("strict")
    again = parse_policy(yaml.safe_dump(policy_to_dict(strict)), "copy.yaml")
    assert again.categories == strict.categories and again.overall == strict.overall
    short = init_policy("fam", "strict", None, full=False, force=False)
    assert short == tmp_path / "policies" / "fam.yaml"
    assert load_policy("fam").categories == strict.categories
    with pytest.raises(PolicyError, match="already exists"):
        init_policy("fam", "strict", None, full=False, force=False)
    full = init_policy("fam2", "minimal", tmp_path / "full.yaml", full=True, force=False)
    assert load_policy(str(full)).categories == load_policy("minimal").categories
    assert not list(tmp_path.rglob("*.tmp"))


def test_controversial_per_category_and_in_defaults():
    import yaml

    assert {c.controversial for c in load_policy("default").categories} == {"block"}  # fail closed by default
    p = parse_policy(MINI.replace("based_on: nothing", "based_on: nothing\ndefaults: {controversial: allow}")
                     .replace("    threshold: 0.4", "    threshold: 0.4\n    controversial: block"), "mini.yaml")
    assert [c.controversial for c in p.categories] == ["block", "allow"]
    again = parse_policy(yaml.safe_dump(policy_to_dict(p)), "copy.yaml")
    assert again.categories == p.categories
