"""Benchmark shard generation and size: compact against the original dense format.

Both formats are measured in the same run on the same events, so the ratios
hold even on a shared, noisy machine. Run from the repository root:

    python benchmarks/bench_shards.py --events 5000 --shards 4 --repeat 3

It prints a Markdown table (paste it into docs/benchmarks.md) and, with
--json, writes the raw numbers. The generator runs single-threaded (numpy
uses one core for these kernels), so events/s is per core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from track_denoiser.generator import GeneratorSettings, generate_shard_events
from track_denoiser.shards import write_shard


def _fsync_tree(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def measure(
    events_per_shard: int, shards: int, mode: str, repeat: int, sync: bool
) -> dict[str, float]:
    """Time generation alone and generation plus writing in both formats."""
    settings = GeneratorSettings(mode=mode, events_per_shard=events_per_shard)
    timings: dict[str, list[float]] = {"generate": [], "npy": [], "compact": []}
    sizes: dict[str, int] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=".") as root:
            start = time.perf_counter()
            blocks = [generate_shard_events(settings, 1, i) for i in range(shards)]
            timings["generate"].append(time.perf_counter() - start)
            for fmt in ("npy", "compact"):
                start = time.perf_counter()
                written: list[Path] = []
                for i in range(shards):
                    events = generate_shard_events(settings, 1, i)
                    written += write_shard(events, root, mode, i, fmt)
                if sync:
                    _fsync_tree(written)
                timings[fmt].append(time.perf_counter() - start)
                sizes[fmt] = sum(p.stat().st_size for p in written)
            del blocks
    n_events = events_per_shard * shards
    result = {
        f"{key}_events_per_s": n_events / statistics.median(values)
        for key, values in timings.items()
    }
    for fmt, size in sizes.items():
        result[f"{fmt}_bytes_per_event"] = size / n_events
    result["compact_over_npy_size"] = sizes["compact"] / sizes["npy"]
    result["compact_over_npy_speed"] = result["compact_events_per_s"] / result["npy_events_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events per shard (default: 5000)")
    parser.add_argument("--shards", type=int, default=4, help="shards per measurement (default: 4)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the median is reported")
    parser.add_argument(
        "--no-sync", action="store_true", help="skip fsync (measure page-cache writes only)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    args = parser.parse_args()

    rows = {}
    for mode in ("denoising", "labeling"):
        rows[mode] = measure(args.events, args.shards, mode, args.repeat, not args.no_sync)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}"
    )
    print(
        f"{args.shards} shards x {args.events} events, median of {args.repeat}, fsync={'off' if args.no_sync else 'on'}\n"
    )
    print("| mode | format | bytes/event | events/s (generate + write) |")
    print("|---|---|---:|---:|")
    for mode, row in rows.items():
        for fmt in ("npy", "compact"):
            print(
                f"| {mode} | {fmt} | {row[f'{fmt}_bytes_per_event']:,.0f} | "
                f"{row[f'{fmt}_events_per_s']:,.0f} |"
            )
        print(f"| {mode} | generate only | | {row['generate_events_per_s']:,.0f} |")
    print()
    for mode, row in rows.items():
        print(
            f"{mode}: compact size = {100 * row['compact_over_npy_size']:.2f} % of npy; "
            f"compact writes {row['compact_over_npy_speed']:.1f}x as many events/s as npy"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
