"""
The layering of C{sipevents}, checked by reading every module's imports.

The layers, bottom to top (see C{docs/architecture.rst}):

    1. value modules: C{errors}, C{config}, C{events}, C{records},
       C{statetable} and the SIP values C{sip.uri}, C{sip.headers},
       C{sip.message}, C{sip.addresses}, C{sip.dialogstate}.
       They import only each other (and L{sipevents.interfaces} for typing,
       since some values hold a provider of an interface);
    2. C{interfaces}: value modules only, not even an implementation for
       typing, so that every contract can have a second implementation;
    3. the SIP layer C{sip.*}: nothing from the roles or the application;
    4. C{packages} and C{store}: the SIP layer and below; neither imports the
       other;
    5. the roles, C{notifier} (which may use C{packages}) and C{subscriber};
       neither imports the other;
    6. the application, C{app}: anything but C{testing};
    7. C{testing}: anything.

Besides, no module imports another at run time that imports it back, however
indirectly. Imports under C{if TYPE_CHECKING:} count for the layers but not
for cycles: they are never executed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

import sipevents

VALUES = frozenset(
    {
        "sipevents",
        "sipevents.errors",
        "sipevents.config",
        "sipevents.events",
        "sipevents.records",
        "sipevents.statetable",
        "sipevents.sip.uri",
        "sipevents.sip.headers",
        "sipevents.sip.message",
        "sipevents.sip.addresses",
        "sipevents.sip.dialogstate",
    }
)

#: Each layer and the layers it may import from (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "values": frozenset(),
    "interfaces": frozenset({"values"}),
    "sip": frozenset({"values", "interfaces"}),
    "packages": frozenset({"values", "interfaces", "sip"}),
    "store": frozenset({"values", "interfaces", "sip"}),
    "notifier": frozenset({"values", "interfaces", "sip", "packages"}),
    "subscriber": frozenset({"values", "interfaces", "sip"}),
    "app": frozenset(
        {"values", "interfaces", "sip", "packages", "store", "notifier", "subscriber"}
    ),
    "testing": frozenset(
        {
            "values",
            "interfaces",
            "sip",
            "packages",
            "store",
            "notifier",
            "subscriber",
            "app",
        }
    ),
}


def layerOf(module: str) -> str:
    """
    The layer C{module} (a dotted name under C{sipevents}) belongs to.
    """
    if module in VALUES:
        return "values"
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in ALLOWED:
        return parts[1]
    raise ValueError(f"{module} belongs to no layer: add it to test_layering")


@dataclass(frozen=True)
class Import:
    """
    One import of a C{sipevents} module by another.

    @ivar importer: the importing module.
    @ivar imported: the imported module.
    @ivar line: where.
    @ivar typingOnly: under C{if TYPE_CHECKING:}.
    """

    importer: str
    imported: str
    line: int
    typingOnly: bool


def moduleNames(root: Path) -> dict[str, Path]:
    """
    Every module of the package in C{root} (the folder holding
    C{__init__.py}), by dotted name.
    """
    names = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _isTypeChecking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, typingOnly: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        inner = typingOnly or (
            isinstance(node, ast.If)
            and _isTypeChecking(node.test)
            and child in node.body
        )
        yield child, inner
        yield from _walk(child, inner)


def importsOf(module: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """
    The imports of package modules that C{module} (at C{path}) makes, at
    module level, inside functions, and under C{TYPE_CHECKING}.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node, typingOnly in _walk(ast.parse(path.read_text()), False):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.append(submodule if submodule in known else base)
        for target in targets:
            if target in known and target != module:
                found.append(Import(module, target, node.lineno, typingOnly))
    return found


def layeringViolations(root: Path) -> list[str]:
    """
    What breaks the layering rules in the package at C{root}, one line each;
    empty when it holds.
    """
    known = moduleNames(root)
    imports = [
        each for name, path in known.items() for each in importsOf(name, path, known)
    ]
    problems = []
    for each in imports:
        try:
            source, target = layerOf(each.importer), layerOf(each.imported)
        except ValueError as e:
            problems.append(str(e))
            continue
        allowed = source == target or target in ALLOWED[source]
        if source == "values" and each.imported == "sipevents.interfaces":
            allowed = each.typingOnly
        if source == "interfaces":
            allowed = target == "values"
        if not allowed:
            problems.append(
                f"{each.importer} (line {each.line}, layer {source}) imports "
                f"{each.imported} (layer {target})"
            )
    problems.extend(_cycles(known, [i for i in imports if not i.typingOnly]))
    return problems


def _cycles(known: dict[str, Path], imports: list[Import]) -> list[str]:
    """
    The run-time import cycles, one line per strongly connected group
    (Tarjan's algorithm).
    """
    graph: dict[str, set[str]] = {name: set() for name in known}
    for each in imports:
        graph[each.importer].add(each.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    onStack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        onStack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in onStack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                onStack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [f"import cycle: {' -> '.join(group)}" for group in groups]


class LayeringTests(TestCase):
    """
    The rules hold for the installed tree, and the check catches a breach.
    """

    def test_sipeventsIsLayered(self) -> None:
        """
        Every import in C{sipevents} respects the layers; there are no
        run-time cycles.
        """
        root = Path(sipevents.__file__).parent
        self.assertEqual(layeringViolations(root), [])

    def _tree(self, files: dict[str, str]) -> Path:
        root = FilePath(self.mktemp()).child("sipevents")
        for name, text in files.items():
            path = root.preauthChild(name)
            path.parent().makedirs(ignoreExistingDirectory=True)
            path.setContent(text.encode())
        return Path(root.path)

    def test_sipLayerImportingARoleFails(self) -> None:
        """
        A SIP-layer module that imports the notifier is reported, with the
        line.
        """
        root = self._tree(
            {
                "__init__.py": "",
                "sip/__init__.py": "",
                "sip/transport.py": "\nfrom sipevents.notifier.notifier import N\n",
                "notifier/__init__.py": "",
                "notifier/notifier.py": "N = 1\n",
            }
        )
        self.assertEqual(
            layeringViolations(root),
            [
                "sipevents.sip.transport (line 2, layer sip) imports "
                "sipevents.notifier.notifier (layer notifier)"
            ],
        )

    def test_interfacesImportingAnImplementationForTypingFails(self) -> None:
        """
        C{interfaces} may not import an implementation, even under
        C{TYPE_CHECKING}.
        """
        root = self._tree(
            {
                "__init__.py": "",
                "interfaces.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n"
                    "    from sipevents.subscriber.subscriber import S\n"
                ),
                "subscriber/__init__.py": "",
                "subscriber/subscriber.py": "S = 1\n",
            }
        )
        self.assertEqual(
            layeringViolations(root),
            [
                "sipevents.interfaces (line 3, layer interfaces) imports "
                "sipevents.subscriber.subscriber (layer subscriber)"
            ],
        )

    def test_rolesDoNotImportEachOther(self) -> None:
        """
        The subscriber may not import the notifier (relative imports
        included).
        """
        root = self._tree(
            {
                "__init__.py": "",
                "notifier/__init__.py": "",
                "notifier/notifier.py": "N = 1\n",
                "subscriber/__init__.py": "",
                "subscriber/subscriber.py": "from ..notifier import notifier\n",
            }
        )
        self.assertEqual(
            layeringViolations(root),
            [
                "sipevents.subscriber.subscriber (line 1, layer subscriber) "
                "imports sipevents.notifier.notifier (layer notifier)"
            ],
        )

    def test_runTimeCycleFails(self) -> None:
        """
        Two modules importing each other at run time (one inside a
        function) are a cycle; a C{TYPE_CHECKING} import back is not.
        """
        root = self._tree(
            {
                "__init__.py": "",
                "sip/__init__.py": "",
                "sip/a.py": "import sipevents.sip.b\n",
                "sip/b.py": "def f():\n    from sipevents.sip import a\n",
                "sip/c.py": "import sipevents.sip.d\n",
                "sip/d.py": (
                    "import typing\n"
                    "if typing.TYPE_CHECKING:\n"
                    "    from sipevents.sip import c\n"
                ),
            }
        )
        self.assertEqual(
            layeringViolations(root),
            ["import cycle: sipevents.sip.a -> sipevents.sip.b"],
        )

    def test_unknownLayerFails(self) -> None:
        """
        A new top-level module must be given a layer before it can be
        imported.
        """
        root = self._tree(
            {
                "__init__.py": "",
                "extra.py": "",
                "sip/__init__.py": "",
                "sip/a.py": "from sipevents import extra\n",
            }
        )
        self.assertIn(
            "sipevents.extra belongs to no layer: add it to test_layering",
            layeringViolations(root),
        )
