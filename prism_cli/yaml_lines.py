"""YAML with line numbers, for files people edit by hand (policies, the model registry).

One load (the C loader when available) gives the data and the line of every key and list item,
so an error names FILE:LINE and the key; a document that aliases expand past a bound, that refers
to itself or that nests too deep is refused before anything walks it expanded.
"""

from __future__ import annotations

from typing import Any

import yaml

from prism_cli.errors import InputError

KeyPath = tuple[Any, ...]
"""Keys and list indexes from the top of a document: ("categories", 2, "threshold")."""

MAX_NODES = 100_000  # YAML nodes a document may expand to, every alias counted as often as it is used
MAX_CHARS = 4_000_000  # characters of scalar text it may expand to (the files read are at most 1 MB)
MAX_DEPTH = 32


def compose(
    text: str, source: str, what: str = "a YAML file", error: type[InputError] = InputError
) -> tuple[Any, dict[KeyPath, int]]:
    """(data, line of every key path). Errors are `error`s naming source and line; `what` names the
    kind of document in them ("a policy may not ...")."""
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _bound(node, source, what, error)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"{source}{line}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}

    def walk(n: yaml.Node | None, path: KeyPath) -> None:
        if n is None:
            return
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in n.value:
                key = k.value
                if key in seen:
                    raise error(f"{source}:{k.start_mark.line + 1}: {key_path(path + (key,))}: duplicate key")
                seen.add(key)
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    walk(node, ())
    return data, lines


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of a key path, or of the nearest enclosing one that has a line."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


def key_path(path: KeyPath) -> str:
    """categories[2].threshold"""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _children(n: yaml.Node) -> list[yaml.Node]:
    if isinstance(n, yaml.MappingNode):
        return [x for kv in n.value for x in kv]
    return list(n.value) if isinstance(n, yaml.SequenceNode) else []


def _bound(root: yaml.Node, source: str, what: str, error: type[InputError]) -> None:
    """Refuse a document that aliases expand past MAX_NODES or MAX_CHARS ("billion laughs"), that
    refers to itself, or that nests past MAX_DEPTH, before anything walks it expanded.

    Expanded sizes are summed once per distinct node, so this costs O(the file), not O(the expansion).
    """
    size: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, characters) once expanded
    open_: set[int] = set()  # nodes whose subtree is being summed: the path from the root
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        n, depth, done = stack.pop()
        key = id(n)
        line = f"{source}:{n.start_mark.line + 1}"
        if done:
            open_.discard(key)
            kids = [size[id(c)] for c in _children(n)]
            nodes = 1 + sum(k[0] for k in kids)
            chars = (len(n.value) if isinstance(n, yaml.ScalarNode) else 0) + sum(k[1] for k in kids)
            if nodes > MAX_NODES or chars > MAX_CHARS:
                limit = f"{MAX_NODES:,} YAML nodes" if nodes > MAX_NODES else f"{MAX_CHARS:,} characters"
                raise error(f"{line}: expands to more than {limit} through aliases; {what} may not (a YAML alias bomb?)")
            size[key] = (nodes, chars)
            continue
        if key in size:
            continue
        if key in open_:
            raise error(f"{line}: a YAML alias refers to a node that contains it; {what} may not be recursive")
        if depth > MAX_DEPTH:
            raise error(f"{line}: nested deeper than {MAX_DEPTH} levels; {what} may not")
        open_.add(key)
        stack.append((n, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(n))
