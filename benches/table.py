#!/usr/bin/env python3
"""table.py RESULTS.tsv SOURCE_BYTES: prints the e2e table (tool, step, wall, CPU, peak RSS,
repository size, bytes added by the step) and each peer's ratio to repo for that step."""
import sys


def mib(n):
    return "%.1f MiB" % (n / 1048576)


def main():
    rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
    src = int(sys.argv[2])
    size_before = {}
    ours = {}
    table = []
    for tool, step, wall, cpu, rss, size in rows:
        wall, cpu, rss, size = float(wall), float(cpu), int(rss), int(size)
        added = size - size_before.get(tool, 0) if step in ("initial", "incremental") else None
        size_before[tool] = size
        table.append((tool, step, wall, cpu, rss, size, added))
        if tool == "repo":
            ours[step] = (wall, cpu, rss, size, added)
    head = ("tool", "step", "wall s", "CPU s", "peak RSS", "repo size", "added", "wall/repo", "CPU/repo", "size/repo")
    fmt = "%-8s %-12s %8s %8s %11s %12s %12s %9s %9s %9s"
    print(fmt % head)
    for tool, step, wall, cpu, rss, size, added in table:
        r = ours.get(step)
        ratio = lambda a, b: ("%.2fx" % (a / b)) if r and b else "-"
        print(fmt % (
            tool, step, "%.2f" % wall, "%.2f" % cpu, mib(rss * 1024), mib(size),
            mib(added) if added is not None else "-",
            ratio(wall, r[0]) if r else "-", ratio(cpu, r[1]) if r else "-",
            ratio(size, r[3]) if r else "-",
        ))
    if "initial" in ours:
        wall, cpu = ours["initial"][0], ours["initial"][1]
        print("\nrepo initial snapshot: %.0f MB/s wall, %.0f MB of source per CPU-second"
              % (src / wall / 1e6, src / cpu / 1e6))


if __name__ == "__main__":
    main()
