#!/usr/bin/env python3
"""Reproducible benchmark dataset for benches/e2e.sh.

    dataset.py generate DIR [SCALE]   a source-code-like tree of 100,000 x SCALE small files
                                      plus a few large binaries (~2 GB x SCALE in all)
    dataset.py change DIR [SCALE]     the "nightly" change: 1% of files edited, bytes inserted
                                      in the middle of large files, files added and removed
    dataset.py change-tree DIR        the same kind of change on any tree (the `real` dataset
                                      of e2e.sh): 1% of files edited in the middle, 0.5%
                                      removed, 0.5% added as edited copies of others

Everything comes from seeded generators, so two runs (and two machines) get the same bytes.
"""
import os
import random
import shutil
import sys

FILES_PER_SCALE = 100_000
FILES_PER_DIR = 25

WORDS = (
    "fn let mut match self impl pub use struct enum trait return if else for while loop "
    "break continue where async await move ref type const static crate super mod as in "
    "Result Option Some None Ok Err Vec String Box Arc Mutex HashMap usize u64 i32 bool "
    "config buffer reader writer index offset length value key entry node tree chunk pack "
    "error context path file dir repo snapshot hash seal open close flush write read"
).split()


def line_pool(rng, n):
    """Lines of code-like text: indentation, tokens, identifiers, punctuation, comments."""
    pool = []
    for _ in range(n):
        indent = "    " * rng.randint(0, 4)
        k = rng.randint(2, 12)
        toks = []
        for _ in range(k):
            r = rng.random()
            if r < 0.7:
                toks.append(rng.choice(WORDS))
            elif r < 0.9:
                toks.append("%s_%d" % (rng.choice(WORDS), rng.randint(0, 999)))
            else:
                toks.append(str(rng.randint(0, 1 << 20)))
        sep = rng.choice([" ", " ", ", ", "."])
        tail = rng.choice([";", " {", "", ")", " }", ","])
        text = indent + sep.join(toks) + tail
        if rng.random() < 0.08:
            text = indent + "// " + " ".join(rng.choices(WORDS, k=rng.randint(4, 14)))
        pool.append(text)
    return pool


def file_rel(i):
    d = i // FILES_PER_DIR
    return os.path.join(
        "src", "m%03d" % (d // 400), "p%03d" % (d // 20 % 20), "d%02d" % (d % 20),
        "f%07d.%s" % (i, ("rs", "py", "c", "h", "js", "md", "toml")[i % 7]),
    )


def text_file(rng, pool):
    # Sizes spread like a real tree: most files a few KB, a long tail to ~100 KB.
    lines = min(int(rng.lognormvariate(4.6, 0.9)) + 3, 2500)
    return ("\n".join(rng.choices(pool, k=lines)) + "\n").encode()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def big_random(rng, path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 16 << 20)
            f.write(rng.randbytes(n))
            left -= n


def disk_image(rng, path, size, pool):
    """Zero runs, random blocks and text blocks, like a VM image."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, rng.choice([64, 256, 1024]) << 10)
            r = rng.random()
            if r < 0.35:
                f.write(bytes(n))
            elif r < 0.7:
                f.write(rng.randbytes(n))
            else:
                f.write(("\n".join(rng.choices(pool, k=n // 30)).encode() + bytes(n))[:n])
            left -= n


def records(rng, path, size):
    """A database-like file: fixed-layout records with a few varying fields."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        written, i = 0, 0
        while written < size:
            buf = []
            for _ in range(4096):
                rec = b"%010d|user%06d|%s|%08x|active|%d\n" % (
                    i, rng.randint(0, 999_999), rng.choice(WORDS).encode(),
                    rng.getrandbits(32), rng.randint(0, 10_000))
                buf.append(rec)
                i += 1
            blob = b"".join(buf)
            f.write(blob)
            written += len(blob)


def generate(root, scale):
    rng = random.Random(20261128)
    pool = line_pool(rng, 60_000)
    n = FILES_PER_SCALE * scale
    total = 0
    for i in range(n):
        if i % 33 == 7 and i > 100:
            # Vendored copies: ~3% of files duplicate an earlier one.
            data = text_file(random.Random(i - 97), pool)
        else:
            data = text_file(rng, pool)
        write(os.path.join(root, file_rel(i)), data)
        total += len(data)
    for k in range(scale):
        big_random(rng, os.path.join(root, "media", "video-%d.bin" % k), 320 << 20)
        big_random(rng, os.path.join(root, "media", "archive-%d.tar.zst" % k), 250 << 20)
        disk_image(rng, os.path.join(root, "images", "vm-%d.img" % k), 400 << 20, pool)
        records(rng, os.path.join(root, "db", "table-%d.dat" % k), 160 << 20)
    return n


def insert_middle(path, rng, nbytes, at_fraction=0.5):
    size = os.path.getsize(path)
    pos = int(size * at_fraction)
    with open(path, "rb") as f:
        head = f.read(pos)
        tail = f.read()
    with open(path, "wb") as f:
        f.write(head)
        f.write(rng.randbytes(nbytes))
        f.write(tail)


def change(root, scale):
    rng = random.Random(42)
    pool = line_pool(random.Random(7), 5_000)
    n = FILES_PER_SCALE * scale
    # 1% of the files edited: a few lines replaced in the middle, some appended.
    for i in rng.sample(range(n), n // 100):
        p = os.path.join(root, file_rel(i))
        if not os.path.exists(p):
            continue
        with open(p, "rb") as f:
            lines = f.read().split(b"\n")
        mid = len(lines) // 2
        lines[mid:mid + 2] = [x.encode() for x in rng.choices(pool, k=3)]
        if rng.random() < 0.3:
            lines.extend(x.encode() for x in rng.choices(pool, k=20))
        with open(p, "wb") as f:
            f.write(b"\n".join(lines))
    # Bytes inserted in the middle of large files (content-defined chunking keeps the rest).
    for k in range(scale):
        insert_middle(os.path.join(root, "images", "vm-%d.img" % k), rng, 4096, 0.3)
        insert_middle(os.path.join(root, "images", "vm-%d.img" % k), rng, 100, 0.8)
        insert_middle(os.path.join(root, "db", "table-%d.dat" % k), rng, 1000, 0.5)
    # 0.5% removed, 0.5% added (a new module).
    for i in rng.sample(range(n), n // 200):
        p = os.path.join(root, file_rel(i))
        if os.path.exists(p):
            os.remove(p)
    for j in range(n // 200):
        write(os.path.join(root, "src", "new_module", "n%06d.rs" % j), text_file(rng, pool))


def change_tree(root):
    rng = random.Random(42)
    files = sorted(
        os.path.join(d, f)
        for d, _, fs in os.walk(root)
        for f in fs
        if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f))
    )
    n = len(files)
    picked = rng.sample(files, n // 100 + n // 200 + n // 200)
    edit, remove, copy = picked[: n // 100], picked[n // 100 : n // 100 + n // 200], picked[n // 100 + n // 200 :]
    for p in edit:
        insert_middle(p, rng, 64)
    for k, p in enumerate(copy):
        with open(p, "rb") as f:
            data = f.read()
        mid = len(data) // 2
        data = data[:mid] + b"/* changed %d */\n" % k + data[mid:]
        write(os.path.join(root, "added", "%06d-%s" % (k, os.path.basename(p))), data)
    for p in remove:
        os.remove(p)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "change-tree":
        change_tree(sys.argv[2])
        return
    if len(sys.argv) < 3 or sys.argv[1] not in ("generate", "change"):
        sys.exit(__doc__)
    root = sys.argv[2]
    scale = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if sys.argv[1] == "generate":
        if os.path.exists(root):
            shutil.rmtree(root)
        generate(root, scale)
    else:
        change(root, scale)


if __name__ == "__main__":
    main()
