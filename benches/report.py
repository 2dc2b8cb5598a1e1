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
        groups[b["group"] or "-"].append(b)
    machine = data.get("machine_info", {})
    print(
        f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"Python {machine.get('python_version', '?')}, {data.get('datetime', '')}\n"
    )
    for group in sorted(groups):
        rows = sorted(groups[group], key=lambda b: b["stats"]["median"])
        best = rows[0]["stats"]["median"]
        print(f"### {group}\n")
        print("| benchmark | median | throughput | × slower than best |")
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
            print(f"| {name} | {med * unit[0]:.2f} {unit[1]} | {tput} | {med / best:.1f} |")
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/bench.json")
