"""The house's rules: no import circles, and folders that depend on each other one way only, in the README's order.

Every import counts, also those inside functions: a circle there is a circle all the same.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from .conftest import ROOT

# Each unit may import its own modules and those of the units before it, never after (README, "The house").
LAYERS = [
    ["models"],
    ["agent:messages", "agent:events", "agent:stages", "agent:numbers", "agent:metrics", "agent:logs"],
    ["agent.speak"], ["agent.answer"], ["agent.hear"], ["agent.animate"], ["agent.avatars"],
    ["agent:config", "agent:config_reference"], ["agent.render"], ["agent.output"], ["agent:engines", "agent:conversation"], ["agent.people"],
    ["agent.calls"], ["agent.transport"], ["agent.cluster"], ["agent:cli"],
]


def _modules() -> dict[str, Path]:
    out = {}
    for package in ("agent", "models"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                prefix = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def unit(module: str) -> str:
    """`agent.hear` for agent/hear/*, `agent:config` for agent/config.py, `models` for all of models/."""
    parts = module.split(".")
    if parts[0] == "models":
        return "models"
    if len(parts) >= 3 or (len(parts) == 2 and (ROOT / "agent" / parts[1]).is_dir()):
        return ".".join(parts[:2])
    return ":".join(parts[:2]) if len(parts) == 2 else "agent"


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_folders_depend_on_each_other_one_way_in_the_stated_order():
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    graph = import_graph()
    units = {unit(m) for m in graph} - {"agent"}
    assert units == set(rank), f"every folder and top-level module has its place in LAYERS: {sorted(units ^ set(rank))}"
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                    if unit(m) != "agent" and unit(d) != "agent" and rank[unit(d)] > rank[unit(m)])
    assert upward == [], "imports against the order"


def test_the_readme_states_the_same_order():
    readme = (ROOT / "README.md").read_text()
    stated = re.search(r"Dependencies go one way, in this order: (.+)", readme).group(1)
    named = [n.strip(" `.") for n in re.split(r"→|,", stated)]
    expected = [n.replace("agent.", "").replace("agent:", "") for layer in LAYERS for n in layer]
    assert named == expected, named
