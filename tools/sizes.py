"""Fail when a function or class in the given trees is too long to hold in one's head: a function over 60 lines or a
class over 250, each counted from its `def`/`class` line to its last line (`make lint` runs it over server/).

Branchiness is ruff's to count (C901, max-complexity 15 in pyproject.toml); this counts length, which ruff does not.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

LIMITS = {"def": 60, "class": 250}


def too_long(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > LIMITS[kind]:
                yield f"{path}:{node.lineno}: {kind} {node.name} is {lines} lines (at most {LIMITS[kind]})"


def main(roots: list[str]) -> int:
    found = [line for root in roots for path in sorted(Path(root).rglob("*.py")) for line in too_long(path)]
    print(
        "\n".join(found) or f"sizes: every function within {LIMITS['def']} lines, every class within {LIMITS['class']}"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["server"]))
