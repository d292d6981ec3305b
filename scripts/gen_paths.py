#!/usr/bin/env python3
"""Regenerate bindings/generated/ from yang/ with our pyang plugin.

Run after editing a module: ``.venv/bin/python scripts/gen_paths.py`` (``--check`` exits 1 when
the committed files are stale; the test suite runs that).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
YANG = ROOT / "yang"
OUT = ROOT / "bindings" / "generated"
PLUGINS = ROOT / "scripts" / "pyang_plugins"


def module_file_name(module: str) -> str:
    return module.replace("-", "_") + ".py"


def render(module_path: Path) -> str:
    pyang = Path(sys.executable).with_name("pyang")
    cmd = [str(pyang) if pyang.exists() else "pyang", "--plugindir", str(PLUGINS), "-f", "qstrata-paths",
           "-p", str(YANG), str(module_path)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    head, _, body = out.partition("\nMODULE")
    return head + "\nMODULE" + body


def expected_files() -> dict[str, str]:
    files = {module_file_name(p.stem): render(p) for p in sorted(YANG.glob("*.yang"))}
    names = sorted(files)
    modules = [n[:-3] for n in names]
    files["__init__.py"] = (
        '"""Path constants generated from yang/ by scripts/gen_paths.py; do not edit."""\n\n'
        + "from ..path_entry import derive as _derive\n"
        + "".join(f"from . import {m}\n" for m in modules)
        + f"\nfor _module in ({', '.join(modules)}):\n"
        + "    _derive(_module)  # NAME and each list's entry(), from PATH and KEYS\n"
    )
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if bindings/generated is stale")
    args = parser.parse_args()
    files = expected_files()
    stale = [n for n, text in files.items() if not (OUT / n).exists() or (OUT / n).read_text() != text]
    extra = [p.name for p in OUT.glob("*.py") if p.name not in files]
    if args.check:
        for n in stale + extra:
            print(f"stale: bindings/generated/{n} (run scripts/gen_paths.py)")
        return 1 if stale or extra else 0
    OUT.mkdir(exist_ok=True)
    for n in stale:
        (OUT / n).write_text(files[n])
        print(f"wrote bindings/generated/{n}")
    for n in extra:
        (OUT / n).unlink()
        print(f"removed bindings/generated/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
