"""Packaging: every package is listed in pyproject.toml so wheels are complete."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP_DIRS = ("agents", "bindings", "collectors", "yang")


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    found = set()
    for top in TOP_DIRS:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            found.add("qstrata." + ".".join(rel.parts))
    return found


def test_every_package_is_listed():
    listed = set(_setuptools()["packages"])
    on_disk = _packages_on_disk()
    assert "qstrata.bindings.codecs" in on_disk
    missing = sorted(on_disk - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_listed_packages_exist():
    package_dir = _setuptools()["package-dir"]
    for package in _setuptools()["packages"]:
        top = ".".join(package.split(".")[:2])
        assert top in package_dir, package
        path = ROOT / package_dir[top] / Path(*package.split(".")[2:])
        assert (path / "__init__.py").is_file(), f"{package} is listed but {path}/__init__.py is missing"


@pytest.mark.parametrize("top", TOP_DIRS)
def test_package_dir_maps_the_namespace(top):
    assert _setuptools()["package-dir"][f"qstrata.{top}"] == top


def test_console_script_exists():
    script = Path(sys.executable).with_name("qstrata")
    assert script.is_file()
    assert "qstrata.agents.cli" in script.read_text(encoding="utf-8", errors="replace")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["qstrata"] == "qstrata.agents.cli:main"
