"""How fast a photo set becomes faces: `load_faces("photos:DIR")` cold (an empty cache: every photo read,
its face found and aligned) and warm (the cache), each in a fresh process, as a user's command pays it.

    python benchmarks/photo_sets.py ../shared/data/photos-wild --repeats 3

Prints the median and range of the wall time and the photos per second. Targets for 1,715 photos on a
2-core CPU: cold <= 60 s, warm <= 1 s (issue: photo data sets).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

LOAD = ("import time, sys; from unveil.data import load_faces; t = time.perf_counter(); "
        "f = load_faces('photos:' + sys.argv[1]); print(time.perf_counter() - t, len(f), len(f.skipped))")


def timed(root: str, cache: str) -> tuple[float, int, int]:
    """(seconds inside load_faces, faces, skipped photos), in a fresh process using `cache`."""
    out = subprocess.run([sys.executable, "-c", LOAD, root], env={**os.environ, "UNVEIL_CACHE": cache},
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="a class-folder set of photos")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            seconds, faces, skipped = timed(args.root, cache)
            cold.append(seconds)
            warm.append(timed(args.root, cache)[0])
    photos = faces + skipped
    print(f"{args.root}: {photos} photos, {faces} faces, {skipped} skipped; {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| load | median s | min-max s | photos/s |\n|---|---|---|---|")
    for name, runs in (("cold (framed, cache written)", cold), ("warm (from the cache)", warm)):
        median = statistics.median(runs)
        print(f"| {name} | {median:.2f} | {min(runs):.2f}-{max(runs):.2f} | {photos / median:.0f} |")


if __name__ == "__main__":
    main()
