"""The simulator's only source rewrite: threadgroup-scope variables and
function constants, the two Metal declarations with no C++ spelling that a
macro can produce.

- ``threadgroup T name[A][B];`` (a variable, not a pointer or reference)
  becomes ``auto& name = ::metal_sim::threadgroup_array<T[A][B]>();``:
  storage shared by every thread of the threadgroup.
- ``constant T name [[function_constant(i)]];`` becomes
  ``inline const ::metal_sim::FunctionConstant<T> name{i};``: it reads the
  current launch's value when used.

Everything else (address spaces, attributes, builtins) is handled by the
headers in ``include/``.
"""

from __future__ import annotations

import re
from pathlib import Path

# A declaration starts a statement: after `;`, `{`, `}` or a line start.
_THREADGROUP_VARIABLE = re.compile(
    r"(?P<lead>(?:^|[;{}])\s*)threadgroup\s+"
    r"(?P<type>[A-Za-z_][\w:<>,\s]*?[\w>])\s+"
    r"(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\];]+\])*)\s*;",
    re.MULTILINE,
)
_FUNCTION_CONSTANT = re.compile(
    r"constant\s+(?P<type>[A-Za-z_][\w:<>]*)\s+(?P<name>[A-Za-z_]\w*)\s*"
    r"\[\[\s*function_constant\(\s*(?P<index>[^)]+?)\s*\)\s*\]\]\s*;"
)

SOURCE_SUFFIXES = (".metal", ".h")


def translate(source: str) -> str:
    """Rewrite one source file's threadgroup variables and function constants."""

    def threadgroup_variable(m: re.Match) -> str:
        type_ = " ".join(m["type"].split())
        return (
            f"{m['lead']}auto& {m['name']} = "
            f"::metal_sim::threadgroup_array<{type_}{m['dims']}>();"
        )

    source = _THREADGROUP_VARIABLE.sub(threadgroup_variable, source)
    return _FUNCTION_CONSTANT.sub(
        lambda m: (
            f"inline const ::metal_sim::FunctionConstant<{m['type']}> "
            f"{m['name']}{{{m['index']}}};"
        ),
        source,
    )


def translate_tree(root: Path, out: Path) -> None:
    """Write a translated copy of every Metal source and header under root."""
    for path in root.rglob("*"):
        if path.suffix in SOURCE_SUFFIXES and path.is_file():
            target = out / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(translate(path.read_text()))
