#!/usr/bin/env python3
"""Parse+validate an ETSI qkd_node with 10 / 1,000 / 10,000 PHYS links: in process vs yanglint.

In process: `DataTree.parse(data, "xml")` on the file's bytes (the shared libyang context, already
compiled), median of N runs. yanglint: the same file, whole process, median of 11 / 5 / 3 runs; its own
parse+validate time is estimated by subtracting the median time of the same command on a qkd_node
with no links (start-up: loading and compiling the modules). yanglint gets the validator's copy of
etsi-qkd-sdn-node (the published `when` defect fixed, see bindings/schema.py), so both accept the
phys_* leaves. Ratios are yanglint / qstrata, from the same run.

    .venv/bin/python scripts/bench_validate.py [--sizes 10,1000,10000] [--runs 21,11,5] [--yanglint-runs 11,5,3]

Ends with one JSON line of every figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from qstrata.bindings.schema import YANG_DIR, get_schema, validator_module_text
from qstrata.bindings.tree import DataTree

TARGET_SIZE, TARGET_MS = 1000, 50.0
NS = "urn:etsi:qkd:yang:etsi-qkd-node"
NS_TYPES = "urn:etsi:qkd:yang:etsi-qkd-node-types"
LOCAL_NODE = "00000000-0000-0000-0000-00000000000a"


def qkd_node_xml(links: int) -> bytes:
    """A qkd_node with `links` PHYS links, each with the phys_* leaves (deterministic uuids)."""
    parts = [
        f'<qkd_node xmlns="{NS}" xmlns:etsi-qkdn-types="{NS_TYPES}">\n',
        f"  <qkdn_id>{LOCAL_NODE}</qkdn_id>\n  <qkd_links>\n",
    ]
    for i in range(links):
        link_id = uuid.UUID(int=(0xC << 124) | i)
        remote = uuid.UUID(int=(0xB << 124) | i)
        parts.append(
            "    <qkd_link>\n"
            f"      <qkdl_id>{link_id}</qkdl_id>\n"
            f"      <qkdl_enable>{'true' if i % 7 else 'false'}</qkdl_enable>\n"
            f"      <qkdl_local><qkdn_id>{LOCAL_NODE}</qkdn_id><qkdi_id>{100 + i % 64}</qkdi_id></qkdl_local>\n"
            f"      <qkdl_remote><qkdn_id>{remote}</qkdn_id><qkdi_id>{200 + i % 64}</qkdi_id></qkdl_remote>\n"
            "      <qkdl_type>etsi-qkdn-types:PHYS</qkdl_type>\n"
            f"      <phys_channel_att>{5 + (i % 200) / 10:.1f}</phys_channel_att>\n"
            f"      <phys_wavelength>{1530 + i % 36}</phys_wavelength>\n"
            f"      <phys_qkd_role>etsi-qkdn-types:{'TRANSMITTER' if i % 2 else 'RECEIVER'}</phys_qkd_role>\n"
            "    </qkd_link>\n"
        )
    parts.append("  </qkd_links>\n</qkd_node>\n")
    return "".join(parts).encode()


def time_in_process(data: bytes, runs: int, links: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        tree = DataTree.parse(data, "xml")
        times.append(time.perf_counter() - start)
        del tree
    check = DataTree.parse(data, "xml")
    found = len(check.find("/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link/phys_wavelength"))
    if found != links:
        raise SystemExit(f"in-process parse lost data: {found} of {links} phys_wavelength leaves")
    return times


def time_yanglint(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"yanglint failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[:2000]}")
    return times


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,1000,10000", help="links per document, comma-separated")
    parser.add_argument("--runs", default="21,11,5", help="in-process runs per size (last repeats)")
    parser.add_argument("--yanglint-runs", default="11,5,3", help="yanglint runs per size (at least 3)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    run_counts = [int(r) for r in args.runs.split(",")]
    run_counts += [run_counts[-1]] * (len(sizes) - len(run_counts))
    lint_counts = [max(3, int(r)) for r in args.yanglint_runs.split(",")]
    lint_counts += [lint_counts[-1]] * (len(sizes) - len(lint_counts))

    yanglint = shutil.which("yanglint")
    get_schema()  # compile once, outside the timings (the agents keep one context per process)
    DataTree.parse(qkd_node_xml(10), "xml")  # warm-up
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="qstrata-bench-") as tmp_name:
        tmp = Path(tmp_name)
        fixed = tmp / "modules"
        fixed.mkdir()
        module = fixed / "etsi-qkd-sdn-node.yang"
        module.write_text(validator_module_text("etsi-qkd-sdn-node"), encoding="utf-8")
        base_cmd = ([yanglint, "-e", "-p", str(fixed), "-p", str(YANG_DIR), str(module),
                     str(YANG_DIR / "etsi-qkd-node-types.yang")] if yanglint else None)  # identities: implemented
        startup: list[float] = []
        if base_cmd:
            empty = tmp / "qkd_node-0.xml"  # yanglint refuses an empty file: a node with no links
            empty.write_bytes(qkd_node_xml(0))
            time_yanglint(base_cmd + [str(empty)], 1)  # warm the page cache
            startup = time_yanglint(base_cmd + [str(empty)], max(lint_counts))
        startup_median = statistics.median(startup) if startup else None

        for links, runs, lint_runs in zip(sizes, run_counts, lint_counts, strict=True):
            data = qkd_node_xml(links)
            path = tmp / f"qkd_node-{links}.xml"
            path.write_bytes(data)
            ours = time_in_process(data, runs, links)
            row = {
                "links": links,
                "bytes": len(data),
                "qstrata_runs": runs,
                "qstrata_ms": ms(statistics.median(ours)),
                "qstrata_min_ms": ms(min(ours)),
            }
            if base_cmd:
                theirs = time_yanglint(base_cmd + [str(path)], lint_runs)
                raw = statistics.median(theirs)
                corrected = max(raw - startup_median, 0.0)
                row.update(
                    yanglint_runs=lint_runs,
                    yanglint_raw_ms=ms(raw),
                    yanglint_corrected_ms=ms(corrected),
                    ratio_raw=round(raw / statistics.median(ours), 2),
                    ratio_corrected=round(corrected / statistics.median(ours), 2),
                )
            results[str(links)] = row

    print(f"Parse+validate etsi-qkd-sdn-node qkd_node, PHYS links (python {platform.python_version()}, "
          f"{platform.machine()}; yanglint: {yanglint or 'not found'})")
    if startup_median is not None:
        print(f"yanglint start-up (same command, qkd_node without links): {ms(startup_median):.1f} ms, median of {len(startup)}")
    print()
    header = "| links | bytes | qstrata in process (ms) | yanglint raw (ms) | yanglint minus start-up (ms) | ratio raw | ratio corrected |"
    print(header)
    print("|" + "|".join("---:" for _ in range(header.count("|") - 1)) + "|")
    for row in results.values():
        cells = [f"{row['links']:,}", f"{row['bytes']:,}", f"{row['qstrata_ms']:.2f} (median of {row['qstrata_runs']})"]
        if "yanglint_raw_ms" in row:
            cells += [f"{row['yanglint_raw_ms']:.1f} (median of {row['yanglint_runs']})", f"{row['yanglint_corrected_ms']:.1f}",
                      f"{row['ratio_raw']:.1f}x", f"{row['ratio_corrected']:.1f}x"]
        else:
            cells += ["-", "-", "-", "-"]
        print("| " + " | ".join(cells) + " |")
    print()
    target = results.get(str(TARGET_SIZE))
    met = target is not None and target["qstrata_ms"] < TARGET_MS
    if target is None:
        print(f"target: {TARGET_SIZE:,} links not measured")
    else:
        print(f"target: {TARGET_SIZE:,} links validated in under {TARGET_MS:.0f} ms in process: "
              f"{'met' if met else 'NOT met'} ({target['qstrata_ms']:.2f} ms)")
    print(json.dumps({
        "bench": "validate",
        "python": platform.python_version(),
        "yanglint": yanglint,
        "yanglint_startup_ms": ms(startup_median) if startup_median is not None else None,
        "sizes": results,
        "target_links": TARGET_SIZE,
        "target_1000_ms": TARGET_MS,
        "met": met,
    }, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
