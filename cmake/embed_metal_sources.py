"""Embed the Metal kernel sources in the extension.

Writes a C++ file that defines ``mlx_qmm::metal::embedded_metal_source``:
for each ``kernels/metal/<name>.metal``, the file with every project header
it includes (``#include "kernels/metal/..."``) inlined once, in include
order, so that it compiles on its own as one string: what Metal's run-time
compiler (``newLibraryWithSource``) needs when no Metal compiler was found
at build time. ``<metal_stdlib>`` stays an include.

    python cmake/embed_metal_sources.py <repository root> <output .cpp>
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PROJECT_INCLUDE = re.compile(r'\s*#\s*include\s+"(kernels/metal/[^"]+)"')
# Raw string literals are cut into pieces well below every compiler's limit.
PIECE = 8000
DELIMITER = "qmm_metal"


def inline(root: Path, path: Path, seen: set[Path]) -> list[str]:
    lines = []
    for line in path.read_text().splitlines():
        match = PROJECT_INCLUDE.match(line)
        if match:
            header = root / match.group(1)
            if header not in seen:
                seen.add(header)
                lines += inline(root, header, seen)
            continue
        if line.strip() == "#pragma once":
            continue
        lines.append(line)
    return lines


def cxx_string(text: str) -> str:
    assert f'){DELIMITER}"' not in text
    pieces = [text[i : i + PIECE] for i in range(0, len(text), PIECE)]
    return "\n".join(f'R"{DELIMITER}({p}){DELIMITER}"' for p in pieces)


def main(root: str, output: str) -> None:
    root_path = Path(root)
    sources = sorted((root_path / "kernels" / "metal").glob("*.metal"))
    cases = []
    for source in sources:
        text = "\n".join(inline(root_path, source, set())) + "\n"
        cases.append(
            f'  if (name == "{source.stem}") {{\n    return {cxx_string(text)};\n  }}\n'
        )
    Path(output).write_text(
        "// Generated from kernels/metal by cmake/embed_metal_sources.py: "
        "do not edit.\n\n"
        '#include "csrc/metal/kernel_source.h"\n\n'
        "namespace mlx_qmm::metal {\n\n"
        "std::string_view embedded_metal_source(std::string_view name) {\n"
        + "".join(cases)
        + "  return {};\n}\n\n} // namespace mlx_qmm::metal\n"
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
