"""scripts/plot_finite_key.py as a user runs it: the table it prints, the PNG it writes (decoded
here with zlib), and that the PNG committed beside the physics docs is the one it draws."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "plot_finite_key.py"
COMMITTED = ROOT / "agents" / "devices" / "physics" / "finite_key.png"


def chunks(png: bytes) -> dict[bytes, bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    found, at = {}, 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind, data = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length:at + 12 + length])[0] == zlib.crc32(kind + data)
        found[kind] = found.get(kind, b"") + data
        at += 12 + length
    return found


def test_the_plot_script_prints_the_ratios_and_writes_the_committed_png(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--out", "plot.png"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].split() == ["1e+04", "0.55", "0.05", "0.50", "0.433", "0.411", "0.366", "0.000", "0.000;", "29.25"]
    assert lines[3].split()[:5] == ["1e+08", "0.90", "0.70", "0.20", "0.740"]
    png = (tmp_path / "plot.png").read_bytes()
    parts = chunks(png)
    width, height, depth, colour = struct.unpack(">IIBB", parts[b"IHDR"][:10])
    assert (width, height, depth, colour) == (960, 640, 8, 2)
    pixels = zlib.decompress(parts[b"IDAT"])
    assert len(pixels) == height * (1 + 3 * width)
    assert bytes((214, 39, 40)) in pixels and bytes((44, 160, 44)) in pixels  # the 1e4 and 1e8 curves
    assert png == COMMITTED.read_bytes()  # the evidence in the docs is what the script draws


def test_an_unwritable_output_is_one_line_and_exit_2(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "--out", "missing/plot.png"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "plot_finite_key: cannot write missing/plot.png: No such file or directory"]
