"""A tiny raster canvas that writes PNG with the standard library only (zlib), for plots in the
docs without a plotting dependency: lines (solid or dashed, any width), filled rectangles and
text in a 5x7 bitmap font, scaled and optionally rotated a quarter turn.

matplotlib is not a dependency of qstrata (with numpy and Pillow it would outweigh the project's
own code); what the evidence plots need is a few lines, a grid and labels.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

Color = tuple[int, int, int]

# 5x7 glyphs, one string of 7 rows of 5 columns each ('#' = ink)
_GLYPHS = {
    " ": "..... ..... ..... ..... ..... ..... .....",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "####. ....# ....# .###. ....# ....# ####.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    "-": "..... ..... ..... .###. ..... ..... .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "/": "....# ...#. ...#. ..#.. .#... .#... #....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "^": "..#.. .#.#. #...# ..... ..... ..... .....",
    "%": "##..# ##.#. ...#. ..#.. .#... .#.## #..##",
    "a": "..... ..... .###. ....# .#### #...# .####",
    "b": "#.... #.... #.##. ##..# #...# #...# ####.",
    "c": "..... ..... .###. #.... #.... #...# .###.",
    "d": "....# ....# .##.# #..## #...# #...# .####",
    "e": "..... ..... .###. #...# ##### #.... .###.",
    "f": "..##. .#..# .#... ###.. .#... .#... .#...",
    "g": "..... .#### #...# #...# .#### ....# .###.",
    "h": "#.... #.... #.##. ##..# #...# #...# #...#",
    "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
    "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
    "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "m": "..... ..... ##.#. #.#.# #.#.# #...# #...#",
    "n": "..... ..... #.##. ##..# #...# #...# #...#",
    "o": "..... ..... .###. #...# #...# #...# .###.",
    "p": "..... ..... ####. #...# ####. #.... #....",
    "q": "..... ..... .#### #...# .#### ....# ....#",
    "r": "..... ..... #.##. ##..# #.... #.... #....",
    "s": "..... ..... .###. #.... .###. ....# ####.",
    "t": ".#... .#... ###.. .#... .#... .#..# ..##.",
    "u": "..... ..... #...# #...# #...# #..## .##.#",
    "v": "..... ..... #...# #...# #...# .#.#. ..#..",
    "w": "..... ..... #...# #...# #.#.# #.#.# .#.#.",
    "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
    "y": "..... ..... #...# #...# .#### ....# .###.",
    "z": "..... ..... ##### ...#. ..#.. .#... #####",
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# ##..# #.#.# #..## #...# #...# #...#",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
}
GLYPH_W, GLYPH_H = 5, 7


def glyph(char: str) -> list[str]:
    rows = _GLYPHS[char].split()
    return [row.ljust(GLYPH_W, ".")[:GLYPH_W] for row in rows]


class Canvas:
    """RGB pixels, origin top left."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def dot(self, x: int, y: int, color: Color, width: int = 1) -> None:
        half = width // 2
        for yy in range(y - half, y - half + width):
            if 0 <= yy < self.height:
                for xx in range(x - half, x - half + width):
                    if 0 <= xx < self.width:
                        i = 3 * (yy * self.width + xx)
                        self.pixels[i:i + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        for y in range(max(y0, 0), min(y1, self.height)):
            for x in range(max(x0, 0), min(x1, self.width)):
                i = 3 * (y * self.width + x)
                self.pixels[i:i + 3] = bytes(color)

    def line(self, x0: float, y0: float, x1: float, y1: float, color: Color, width: int = 1,
             dash: tuple[int, int] | None = None, phase: float = 0.0) -> float:
        """Draw from (x0, y0) to (x1, y1); `dash` = (on, off) pixels. Returns the dash phase at the
        end, so a polyline's dashes run on across its segments."""
        steps = max(int(max(abs(x1 - x0), abs(y1 - y0))), 1)
        length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        for n in range(steps + 1):
            t = n / steps
            at = phase + t * length
            if dash is None or at % (dash[0] + dash[1]) < dash[0]:
                self.dot(round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t), color, width)
        return phase + length

    def polyline(self, points: list[tuple[float, float]], color: Color, width: int = 1,
                 dash: tuple[int, int] | None = None) -> None:
        phase = 0.0
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            phase = self.line(x0, y0, x1, y1, color, width, dash, phase)

    def text(self, x: int, y: int, text: str, color: Color = (0, 0, 0), scale: int = 2,
             vertical: bool = False) -> None:
        """`text` with its top left at (x, y); `vertical`: reading bottom to top, (x, y) its
        bottom left."""
        for k, char in enumerate(text):
            for r, row in enumerate(glyph(char)):
                for c, ink in enumerate(row):
                    if ink != "#":
                        continue
                    gx, gy = k * (GLYPH_W + 1) + c, r
                    px, py = (x + gy * scale, y - gx * scale - scale) if vertical else (x + gx * scale, y + gy * scale)
                    self.rect(px, py, px + scale, py + scale, color)

    @staticmethod
    def text_width(text: str, scale: int = 2) -> int:
        return len(text) * (GLYPH_W + 1) * scale - scale

    def png(self) -> bytes:
        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        stride = 3 * self.width
        raw = b"".join(b"\x00" + bytes(self.pixels[y * stride:(y + 1) * stride]) for y in range(self.height))
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))

    def save(self, path: Path) -> None:
        path.write_bytes(self.png())
