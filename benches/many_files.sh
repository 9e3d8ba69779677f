#!/usr/bin/env bash
# Many small files: what a tree of N tiny files costs (the metadata path: walk, stat, tree
# encoding, the parent comparison, the index), against restic and against `find`.
#
#   benches/many_files.sh [--files N] [--tools repo,restic] [--work DIR]
#
# Generates N files (default 1,000,000) of 64–2,048 bytes, 1,000 per directory, from a
# seeded generator, then measures: `find DIR -type f` (the floor for any walk), the first
# snapshot, a no-change snapshot, and the same two for each peer. Prints wall, CPU, peak
# RSS, and the ratios the project tracks: first snapshot peer ÷ repo, no-change repo ÷ find.
# Warm page and dentry caches: the tree is walked and every file read once before
# measuring, so no tool pays for reading from disk what the next one finds cached. (Cold,
# on this 2-core VM's disk, a million-file first snapshot took 52 s with the reads started
# ahead of the chunkers, 102 s before.)
set -euo pipefail
cd "$(dirname "$0")/.."

files=1000000
tools=repo,restic
work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --files) files="$2"; shift 2 ;;
    --tools) tools="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
work="${work:-${TMPDIR:-/tmp}/repo-many-files}"
mkdir -p "$work"
work=$(cd "$work" && pwd)

need=()
command -v python3 >/dev/null || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
case ",$tools," in *,restic,*) command -v restic >/dev/null || need+=(restic) ;; esac
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
. scripts/deps.sh
cargo build --release --quiet --bin repo
repo_bin="$CARGO_TARGET_DIR/release/repo"
export GOMAXPROCS=2 REPO_PASSWORD=bench-password RESTIC_PASSWORD=bench-password
export XDG_CACHE_HOME="$work/cache"

data="$work/data-$files"
if [ ! -f "$data/.complete" ]; then
  echo "generating $files files in $data ..."
  rm -rf "$data"
  python3 - "$data" "$files" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(20261203)
words = b"alpha beta gamma delta config value index entry node file path data".split()
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    size = rng.randint(64, 2048)
    body = b" ".join(rng.choice(words) for _ in range(size // 5))[:size]
    with open(os.path.join(d, "f%06d.txt" % i), "wb") as f:
        f.write(b"%d\n" % i + body)
EOF
  touch "$data/.complete"
fi
results="$work/results.tsv"
: >"$results"

# measure NAME CMD...: one row of wall, CPU and peak RSS (KiB).
measure() {
  local name="$1" t="$work/time.out"; shift
  if ! /usr/bin/time -f '%e %U %S %M' -o "$t" "$@" >"$work/$name.log" 2>&1; then
    echo "$name failed; see $work/$name.log" >&2
    tail -20 "$work/$name.log" >&2
    exit 1
  fi
  read -r wall user sys rss <"$t"
  printf '%s\t%s\t%s\t%s\n' "$name" "$wall" "$(awk "BEGIN{print $user + $sys}")" "$rss" >>"$results"
  printf '  %-22s %8.2f s wall %8.2f s cpu %8d KiB rss\n' "$name" "$wall" \
    "$(awk "BEGIN{print $user + $sys}")" "$rss"
}

find "$data" -type f -print0 | xargs -0 cat >/dev/null # warm dentries, inodes and content
measure find find "$data" -type f
IFS=, read -r -a tool_list <<<"$tools"
for t in "${tool_list[@]}"; do
  r="$work/repo-$t"
  rm -rf "$r" "$work/cache"
  case "$t" in
    repo)
      "$repo_bin" --repo "$r" -q init
      measure repo-first "$repo_bin" --repo "$r" -q snapshot --threads 2 "$data"
      measure repo-no-change "$repo_bin" --repo "$r" -q snapshot --threads 2 "$data"
      ;;
    restic)
      restic -r "$r" -q init --repository-version 2
      measure restic-first restic -r "$r" -q backup --compression auto "$data"
      measure restic-no-change restic -r "$r" -q backup --compression auto "$data"
      ;;
    *) echo "unknown tool: $t" >&2; exit 2 ;;
  esac
done

echo
echo "files: $files; machine: $(nproc) cores; warm caches"
python3 - "$results" <<'EOF'
import sys
rows = {n: (float(w), float(c), int(r)) for n, w, c, r in
        (l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip())}
print("%-22s %9s %9s %10s" % ("step", "wall s", "CPU s", "peak RSS"))
for n, (w, c, r) in rows.items():
    print("%-22s %9.2f %9.2f %7.0f MiB" % (n, w, c, r / 1024))
def ratio(a, b):
    if a in rows and b in rows:
        print("%s / %s: %.2fx" % (a, b, rows[a][0] / rows[b][0]))
ratio("restic-first", "repo-first")
ratio("restic-no-change", "repo-no-change")
ratio("repo-no-change", "find")
EOF
