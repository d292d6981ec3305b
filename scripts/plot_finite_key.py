#!/usr/bin/env python3
"""Finite-key vs asymptotic secret key rate against channel loss, for blocks of 1e4, 1e6 and 1e8
sifted bits: the plot in agents/devices/physics/FINITE_KEY.md.

The QKD system is the twins' modern parameter set (1 GHz, eta_Bob 0.2, Y0 1e-6, e_d 1 %,
f_EC 1.16, intensities 0.5 / 0.1 / 2e-4, eps_sec 1e-10, eps_cor 1e-15). Each block size gets the
basis bias and intensity probabilities that suit it (`finite_key.tuned` at 20 dB), as an operator
would set them; the dashed line of the same colour is the asymptotic (ideal-decoy) rate of those
very settings, the `asymptotic-skr` the twin reports beside `skr`.

Usage: .venv/bin/python scripts/plot_finite_key.py [--out agents/devices/physics/finite_key.png]
Prints the settings and a few points, writes the PNG (standard library only: scripts/png_canvas.py).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from qstrata.agents.devices.physics import finite_key, qkd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from png_canvas import Canvas  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = (1e4, 1e6, 1e8)
TUNED_AT_DB = 20.0
COLOURS = {1e4: (214, 39, 40), 1e6: (31, 119, 180), 1e8: (44, 160, 44)}
LOSS_MAX_DB, RATE_MIN, RATE_MAX = 45.0, 1e1, 1e8


def settings() -> dict[float, qkd.DecoyBB84Parameters]:
    """The modern set tuned for each block size (q_x, p_mu, p_nu at 20 dB)."""
    return {n_x: finite_key.tuned(qkd.MODERN, TUNED_AT_DB, n_x) for n_x in BLOCKS}


def ratios(params: qkd.DecoyBB84Parameters, losses: tuple[float, ...] = (0, 10, 20, 30, 40)) -> list[float]:
    """Finite-key rate / asymptotic rate of the same settings at each loss (0 where neither)."""
    found = []
    for loss in losses:
        ideal = finite_key.ideal_rate(params, loss)
        found.append(finite_key.finite_rate(params, loss).rate / ideal if ideal else 0.0)
    return found


def curves(params: qkd.DecoyBB84Parameters, step_db: float = 0.25) -> tuple[list, list]:
    """(loss, finite bit/s) and (loss, asymptotic bit/s) points, zero rates left out."""
    finite, ideal = [], []
    for i in range(int(LOSS_MAX_DB / step_db) + 1):
        loss = i * step_db
        f, a = finite_key.finite_rate(params, loss).rate, finite_key.ideal_rate(params, loss)
        if f > 0:
            finite.append((loss, f))
        if a > 0:
            ideal.append((loss, a))
    return finite, ideal


def draw(sets: dict[float, qkd.DecoyBB84Parameters], out: Path) -> None:
    width, height = 960, 640
    left, right, top, bottom = 110, 30, 60, 90
    c = Canvas(width, height)

    def xy(loss: float, rate: float) -> tuple[float, float]:
        fx = loss / LOSS_MAX_DB
        fy = (math.log10(rate) - math.log10(RATE_MIN)) / (math.log10(RATE_MAX) - math.log10(RATE_MIN))
        return left + fx * (width - left - right), height - bottom - fy * (height - top - bottom)

    grey, black = (225, 225, 225), (0, 0, 0)
    for loss in range(0, int(LOSS_MAX_DB) + 1, 5):
        x, _ = xy(loss, RATE_MIN)
        c.line(x, top, x, height - bottom, grey)
        label = str(loss)
        c.text(int(x - Canvas.text_width(label) / 2), height - bottom + 10, label)
    for exponent in range(int(math.log10(RATE_MIN)), int(math.log10(RATE_MAX)) + 1):
        _, y = xy(0, 10.0**exponent)
        c.line(left, y, width - right, y, grey)
        label = f"1e{exponent}"
        c.text(left - 10 - Canvas.text_width(label), int(y - 7), label)
    c.line(left, top, left, height - bottom, black, 2)
    c.line(left, height - bottom, width - right, height - bottom, black, 2)
    title = "Finite-key vs asymptotic key rate, modern set, tuned per block"
    c.text((width - Canvas.text_width(title)) // 2, 20, title)
    xlabel = "channel loss (dB)"
    c.text((width - Canvas.text_width(xlabel)) // 2, height - 45, xlabel)
    ylabel = "secret key rate (bit/s)"
    c.text(25, (height + Canvas.text_width(ylabel)) // 2, ylabel, vertical=True)

    for n_x, params in sets.items():
        finite, ideal = curves(params)
        colour = COLOURS[n_x]
        c.polyline([xy(*p) for p in ideal], colour, 2, dash=(10, 7))
        c.polyline([xy(*p) for p in finite], colour, 3)

    legend_x, legend_y = width - right - 410, top + 15
    c.rect(legend_x - 10, legend_y - 10, width - right - 10, legend_y + 20 * (len(sets) + 2) + 5, (250, 250, 250))
    for k, (n_x, params) in enumerate(sets.items()):
        y = legend_y + 20 * k + 7
        c.line(legend_x, y, legend_x + 40, y, COLOURS[n_x], 3)
        exponent = round(math.log10(n_x))
        c.text(legend_x + 50, y - 7, f"n_X=1e{exponent} q_x={params.q_x:.2f} p={params.p_mu:.2f}/{params.p_nu:.2f}")
    y = legend_y + 20 * len(sets) + 7
    c.line(legend_x, y, legend_x + 40, y, (90, 90, 90), 3)
    c.text(legend_x + 50, y - 7, "finite key")
    y += 20
    c.line(legend_x, y, legend_x + 40, y, (90, 90, 90), 2, dash=(10, 7))
    c.text(legend_x + 50, y - 7, "asymptotic, same settings")
    c.save(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "agents" / "devices" / "physics" / "finite_key.png")
    args = parser.parse_args(argv)
    sets = settings()
    print(f"{'n_X':>6} {'q_x':>5} {'p_mu':>5} {'p_nu':>5}  finite/asymptotic at 0, 10, 20, 30, 40 dB; reach (dB)")
    for n_x, params in sets.items():
        finite, _ = curves(params)
        reach = finite[-1][0] if finite else 0.0
        print(f"{n_x:>6.0e} {params.q_x:>5.2f} {params.p_mu:>5.2f} {params.p_nu:>5.2f}  "
              + " ".join(f"{r:5.3f}" for r in ratios(params)) + f"; {reach:.2f}")
    try:
        draw(sets, args.out)
    except OSError as err:
        print(f"plot_finite_key: cannot write {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
