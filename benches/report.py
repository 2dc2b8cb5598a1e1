"""Turns a pytest-benchmark JSON file into the Markdown tables of BENCHMARKS.md: per group,
each entry's median, throughput (from `extra_info` bytes/packets) and ratio to the fastest."""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    data = json.load(open(path))
    groups: dict[str, list[dict]] = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b["group"] or b["fullname"].split("::")[0].split("/")[-1]].append(b)
    machine = data.get("machine_info", {})
    print(
        f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"Python {machine.get('python_version', '?')}, {data.get('datetime', '')}\n"
    )
    for group in sorted(groups):

        def per_unit(b: dict) -> float:
            """Median per packet or per byte, so entries that ran fewer packets compare fairly."""
            info = b.get("extra_info", {})
            return b["stats"]["median"] / (info.get("packets") or info.get("bytes") or 1)

        rows = sorted(groups[group], key=per_unit)
        best = per_unit(rows[0])
        print(f"### {group}\n")
        print(
            "| benchmark | median per round | throughput | × slower than best (per packet/byte) |"
        )
        print("| --- | --- | --- | --- |")
        for b in rows:
            med = b["stats"]["median"]
            info = b.get("extra_info", {})
            tput = ""
            if "bytes" in info:
                tput = f"{info['bytes'] / med / 1e9:.2f} GB/s"
            elif "packets" in info:
                tput = f"{info['packets'] / med / 1e6:.2f} M packets/s"
            unit = (1e6, "µs") if med < 1e-3 else (1e3, "ms")
            name = b["name"].replace("test_", "")
            note = f" ({info['note']})" if "note" in info else ""
            print(
                f"| {name}{note} | {med * unit[0]:.2f} {unit[1]} | {tput} | {per_unit(b) / best:.1f} |"
            )
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/bench.json")
