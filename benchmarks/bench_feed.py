"""Benchmark the training feed: events/s from compact shards against dense .npy shards.

Both formats hold the same events (the dense shards are converted from the
compact ones) and are read in the same run, so the ratio holds on a shared
machine. Run from the repository root:

    python benchmarks/bench_feed.py --events 5000 --shards 4 --batch 128 --epochs 3

The feed shuffles as in training and yields float32 (noisy, clean) batches
of shape (batch, 12, 14, 208, 1) through tf.data. It reports wall-clock
events/s over whole epochs (median) and CPU microseconds per event.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

from track_denoiser.dataset import ShardDataset, find_shards
from track_denoiser.generator import GeneratorSettings
from track_denoiser.production import generate_shards
from track_denoiser.shards import convert_shard


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(root: str, shards: int, fmt: str, batch: int, epochs: int) -> dict[str, float]:
    """Run ``epochs`` passes of the tf.data feed; return events/s and CPU time per event."""
    dataset = ShardDataset(find_shards(root, 0, shards, fmt), batch, shuffle=True, seed=0)  # type: ignore[arg-type]
    feed = dataset.tf_dataset()
    for _ in feed.take(2):  # build the graph before timing
        pass
    rates, cpu = [], []
    for _ in range(epochs):
        cpu_start, start, n = _cpu_seconds(), time.perf_counter(), 0
        for noisy, _clean in feed:
            n += int(noisy.shape[0])
        rates.append(n / (time.perf_counter() - start))
        cpu.append((_cpu_seconds() - cpu_start) / n)
    return {
        "events_per_s": statistics.median(rates),
        "cpu_us_per_event": 1e6 * statistics.median(cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events per shard (default: 5000)")
    parser.add_argument("--shards", type=int, default=4, help="number of shards (default: 4)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument(
        "--epochs", type=int, default=3, help="timed epochs; the median is reported"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=".") as root:
        settings = GeneratorSettings(events_per_shard=args.events)
        generate_shards(root, settings, 11, range(args.shards), "compact", progress=False)
        for index in range(args.shards):
            convert_shard(root, "denoising", index, "npy")
        results = {
            fmt: measure(root, args.shards, fmt, args.batch, args.epochs)
            for fmt in ("npy", "compact")
        }

    print(
        f"{os.cpu_count()} cores; {args.shards} shards x {args.events} events; batch {args.batch}; "
        f"median of {args.epochs} epochs; dense shards in the page cache\n"
    )
    print("| format | events/s | CPU µs/event |")
    print("|---|---:|---:|")
    for fmt, row in results.items():
        print(f"| {fmt} | {row['events_per_s']:,.0f} | {row['cpu_us_per_event']:.1f} |")
    ratio = results["compact"]["events_per_s"] / results["npy"]["events_per_s"]
    print(f"\ncompact feeds {ratio:.2f}x as many events/s as npy")


if __name__ == "__main__":
    main()
