"""The simulator's source rewrite: the few Metal constructs that no C++
macro can express, rewritten in every Metal source and header it compiles.

- ``threadgroup T name[A][B];`` (a variable, not a pointer or reference)
  becomes ``auto& name = ::metal_sim::threadgroup_array<T[A][B]>();``:
  storage shared by every thread of the threadgroup.
- ``constant T name [[function_constant(i)]];`` becomes
  ``inline const ::metal_sim::FunctionConstant<T> name{i};``: it reads the
  current launch's value when used.
- Overloads that differ only in address space (Metal's
  ``void f() device`` members, ``operator+=(device T&, ...)``,
  specializations on ``device T*``): with the spaces gone they would be
  redefinitions, so each later duplicate of an earlier definition is
  dropped. Their bodies are the same code; only the memory they address
  differed, and here all memory is one.
- The attributes that bind a ``[[kernel]]`` function's parameters become
  default arguments that fetch the value for the calling simulated thread
  (``[[buffer(3)]]`` -> ``= ::metal_sim::BufferBinding{3}``,
  ``[[thread_position_in_grid]]`` -> ``= ::metal_sim::BuiltinBinding{...}``),
  so the executor calls every kernel with no arguments. The same attributes
  on other functions' parameters mean nothing in Metal and are removed.

Everything else (address spaces, keywords, builtins) is handled by the
headers in ``include/``.
"""

from __future__ import annotations

import re
from pathlib import Path

# A declaration starts a statement: after `;`, `{`, `}` or a line start.
_THREADGROUP_VARIABLE = re.compile(
    r"(?P<lead>(?:^|[;{}])\s*)threadgroup\s+"
    r"(?P<type>[A-Za-z_](?:[\w:<>,\s]*?[\w>])?)\s+"
    r"(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\];]+\])*)\s*;",
    re.MULTILINE,
)
_FUNCTION_CONSTANT = re.compile(
    r"constant\s+(?P<type>[A-Za-z_][\w:<>]*)\s+(?P<name>[A-Za-z_]\w*)\s*"
    r"\[\[\s*function_constant\(\s*(?P<index>[^)]+?)\s*\)\s*\]\]\s*;"
)

# `constant const int64_t strides[2]` as a parameter: an array parameter is a
# pointer, and clang wants the address space on the pointee, spelled so.
_SPACE_ARRAY_PARAMETER = re.compile(
    r"(?P<decl>(?:threadgroup|device|constant)\s+(?:const\s+)?[\w:]+)\s+"
    r"(?P<name>[A-Za-z_]\w*)\s*\[[^\]]*\](?=\s*[,)])"
)

_SPACE_WORD = re.compile(r"\b(?:thread|threadgroup|device|constant)\b")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_ACCESS = re.compile(r"^\s*(?:public|private|protected)\s*:")

# Metal's parameter attributes and the executor's Builtin for each.
BUILTINS = {
    "thread_position_in_grid": "ThreadPositionInGrid",
    "thread_position_in_threadgroup": "ThreadPositionInThreadgroup",
    "threadgroup_position_in_grid": "ThreadgroupPositionInGrid",
    "threads_per_threadgroup": "ThreadsPerThreadgroup",
    "threadgroups_per_grid": "ThreadgroupsPerGrid",
    "threads_per_grid": "ThreadsPerGrid",
    "thread_index_in_threadgroup": "ThreadIndexInThreadgroup",
    "simdgroup_index_in_threadgroup": "SimdgroupIndexInThreadgroup",
    "thread_index_in_simdgroup": "ThreadIndexInSimdgroup",
    "threads_per_simdgroup": "ThreadsPerSimdgroup",
    "simdgroups_per_threadgroup": "SimdgroupsPerThreadgroup",
    "quadgroup_index_in_threadgroup": "QuadgroupIndexInThreadgroup",
    "thread_index_in_quadgroup": "ThreadIndexInQuadgroup",
    "quadgroups_per_threadgroup": "QuadgroupsPerThreadgroup",
}
_BINDING = re.compile(
    r"\[\[\s*(?:(?P<builtin>" + "|".join(BUILTINS) + r")"
    r"|(?P<kind>buffer|threadgroup|texture|sampler)\s*\(\s*(?P<index>[^)]+?)\s*\))"
    # e.g. `, function_constant(use_out_source)`: bound either way here.
    r"\s*(?:,[^\]]*)?\]\]"
)
_KERNEL = re.compile(r"\[\[\s*kernel\b[^\]]*\]\]")

SOURCE_SUFFIXES = (".metal", ".h")


def _matching(source: str, open_at: int, pair: str = "()") -> int:
    """Index just past the bracket that closes the one at `open_at`."""
    depth = 0
    for i in range(open_at, len(source)):
        depth += {pair[0]: 1, pair[1]: -1}.get(source[i], 0)
        if depth == 0:
            return i + 1
    raise ValueError(f"unbalanced {pair}")


def _default_argument(m: re.Match) -> str:
    if m["builtin"]:
        return (
            " = ::metal_sim::BuiltinBinding{::metal_sim::Builtin::"
            f"{BUILTINS[m['builtin']]}}}"
        )
    if m["kind"] == "buffer":
        return f" = ::metal_sim::BufferBinding{{{m['index']}}}"
    raise NotImplementedError(
        f"the Metal simulator cannot bind [[{m['kind']}({m['index']})]] "
        "kernel parameters"
    )


def _bind_kernel_arguments(source: str) -> str:
    out = []
    pos = 0
    for k in _KERNEL.finditer(source):
        open_at = source.index("(", k.end())
        close_at = _matching(source, open_at) - 1
        # The [[kernel]] attribute itself has no host meaning.
        out.append(_BINDING.sub("", source[pos : k.start()]))
        out.append(_BINDING.sub("", source[k.end() : open_at]))
        out.append(_BINDING.sub(_default_argument, source[open_at:close_at]))
        pos = close_at
    out.append(_BINDING.sub("", source[pos:]))
    return "".join(out)


def _normalized_head(head: str) -> str:
    head = _ACCESS.sub("", _COMMENT.sub("", head))
    return " ".join(_SPACE_WORD.sub(" ", head).split())


def _drop_space_duplicates(source: str) -> str:
    """Drop every definition that repeats an earlier one but for address
    spaces (see the module docstring)."""
    out = []
    seen = set()
    pos = 0  # copied up to here
    head_start = 0
    i = 0
    while i < len(source):
        c = source[i]
        if c in ";}":
            head_start = i + 1
        elif c == "{":
            head = source[head_start:i]
            if "(" in head or "<" in head:
                key = _normalized_head(head)
                if _SPACE_WORD.search(_COMMENT.sub("", head)) and key in seen:
                    end = _matching(source, i, "{}")
                    if source[end : end + 1] == ";":
                        end += 1
                    out.append(source[pos:head_start])
                    pos = i = end
                    head_start = end
                    continue
                seen.add(key)
            head_start = i + 1
        i += 1
    out.append(source[pos:])
    return "".join(out)


def translate(source: str) -> str:
    """Rewrite one Metal source file (see the module docstring)."""

    def threadgroup_variable(m: re.Match) -> str:
        type_ = " ".join(m["type"].split())
        return (
            f"{m['lead']}auto& {m['name']} = "
            f"::metal_sim::threadgroup_array<{type_}{m['dims']}>();"
        )

    source = _bind_kernel_arguments(source)
    source = _drop_space_duplicates(source)
    source = _SPACE_ARRAY_PARAMETER.sub(r"\g<decl>* \g<name>", source)
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
