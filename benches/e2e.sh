#!/usr/bin/env bash
# End-to-end benchmark: repo against restic, BorgBackup and bupstash on one dataset.
#
#   benches/e2e.sh [--dataset synthetic|real] [--scale N] [--tools repo,restic,borg,bupstash]
#                  [--work DIR] [--keep]
#
# Tool `base` is another `repo` binary, REPO_BASE_BIN (e.g. the parent commit's build): with
# `--tools repo,base` a change is measured against what it changes, in one run.
#
# Generates ~2 GB x N (100,000 x N source-like files plus large binaries, benches/dataset.py),
# then for every tool: init, initial snapshot, incremental after the "nightly" change
# (1% of files edited, bytes inserted in the middle of large files, 0.5% added, 0.5%
# removed), restore of the latest snapshot (verified file by file against the source) and
# a check that reads all data. Prints one table: wall, CPU (user+sys), peak RSS, repository
# size and bytes added, plus each peer's ratio to repo. Warm page cache: the source is read
# once before the first tool runs.
#
# `--dataset real` is real-world data instead: the Linux 6.1 source tree (Debian package
# linux-source-6.1, ~78,600 files, 1.3 GB) and two unpacked binary packages (chromium,
# libllvm15), all from the Debian archive; the change is benches/dataset.py change-tree
# (1% of files edited in the middle, 0.5% removed, 0.5% added as edited copies).
#
# Comparable settings for all tools: encryption on, zstd's fast class of compression
# (restic: --compression auto = zstd "default" level; borg: zstd,3; bupstash: its
# default, zstd level 3; repo: its default, level 4 — level 3's match finder with larger
# tables; a base build: its own default), 2 threads (restic GOMAXPROCS=2; borg 1.2 is
# single-threaded; repo --threads 2). bupstash 0.12.0 is built by `cargo install`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scale=1
dataset=synthetic
tools=repo,restic,borg
work=""
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --dataset) dataset="$2"; shift 2 ;;
    --tools) tools="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
work="${work:-${TMPDIR:-/tmp}/repo-e2e-bench}"
mkdir -p "$work"
work=$(cd "$work" && pwd)
# Peak disk use at scale 1: ~2 GB source + ~1.2 GB per repository + one 2 GB restore.

need=()
command -v python3 >/dev/null || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
case ",$tools," in *,restic,*) command -v restic >/dev/null || need+=(restic) ;; esac
case ",$tools," in *,borg,*) command -v borg >/dev/null || need+=(borgbackup) ;; esac
case ",$tools," in *,bupstash,*) need+=(libsodium-dev pkg-config) ;; esac
case "$dataset" in
  synthetic) ;;
  real) [ -f /usr/src/linux-source-6.1.tar.xz ] || need+=(linux-source-6.1) ;;
  *) echo "unknown dataset: $dataset (synthetic or real)" >&2; exit 2 ;;
esac
case ",$tools," in *,base,*) [ -x "${REPO_BASE_BIN:-}" ] || { echo "tool base needs REPO_BASE_BIN=<a repo binary>" >&2; exit 2; } ;; esac
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

. scripts/deps.sh
cargo build --release --quiet --bin repo
repo_bin="$CARGO_TARGET_DIR/release/repo"
case ",$tools," in
  *,bupstash,*)
    bupstash_root="${XDG_CACHE_HOME:-$HOME/.cache}/repo-bench-tools"
    [ -x "$bupstash_root/bin/bupstash" ] ||
      cargo install --quiet --locked bupstash --version 0.12.0 --root "$bupstash_root"
    export PATH="$bupstash_root/bin:$PATH"
    ;;
esac

data="$work/data"
results="$work/results.tsv"
: >"$results"
threads=2
export GOMAXPROCS=$threads
export REPO_PASSWORD=bench-password RESTIC_PASSWORD=bench-password BORG_PASSPHRASE=bench-password
export BORG_BASE_DIR="$work/borg-home" XDG_CACHE_HOME="$work/cache"

# The real-world dataset: a kernel tree and unpacked binary packages.
real_dataset() {
  rm -rf "$data" "$work/debs"
  mkdir -p "$data/pkgs" "$work/debs"
  tar xJf /usr/src/linux-source-6.1.tar.xz -C "$data"
  (cd "$work/debs" && apt-get download -qq -o APT::Sandbox::User=root chromium libllvm15 >/dev/null)
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$data/pkgs/$(basename "$deb" .deb)"
  done
  rm -rf "$work/debs"
}

echo "generating dataset ($dataset, scale $scale) in $data ..."
if [ "$dataset" = real ]; then
  real_dataset
else
  python3 benches/dataset.py generate "$data" "$scale"
fi
sync # no writeback of the fresh dataset during the first measurement
src_bytes=$(du -sb "$data" | cut -f1)
src_files=$(find "$data" -type f | wc -l)

repo_of() { echo "$work/repo-$1"; }
size_of() { du -sb "$(repo_of "$1")" | cut -f1; }

# measure TOOL STEP CMD...: one row of wall, cpu, rss (KiB), repo size.
measure() {
  local tool="$1" step="$2"; shift 2
  local t="$work/time.out"
  if ! /usr/bin/time -f '%e %U %S %M' -o "$t" "$@" >"$work/$tool-$step.log" 2>&1; then
    echo "$tool $step failed; see $work/$tool-$step.log" >&2
    tail -20 "$work/$tool-$step.log" >&2
    exit 1
  fi
  read -r wall user sys rss <"$t"
  local cpu
  cpu=$(awk "BEGIN{print $user + $sys}")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$step" "$wall" "$cpu" "$rss" "$(size_of "$tool")" >>"$results"
  printf '  %-7s %-12s %8.2f s wall %8.2f s cpu %8d KiB rss\n' "$tool" "$step" "$wall" "$cpu" "$rss"
}

run_tool() {
  local tool="$1" step="$2" r bin="$repo_bin"
  r=$(repo_of "$tool")
  [ "$tool" = base ] && bin="$REPO_BASE_BIN"
  case "$tool:$step" in
    repo:init|base:init) measure "$tool" init "$bin" --repo "$r" init ;;
    repo:initial|repo:incremental|base:initial|base:incremental) measure "$tool" "$step" "$bin" --repo "$r" -q snapshot --threads $threads "$data" ;;
    repo:restore|base:restore) measure "$tool" restore "$bin" --repo "$r" -q restore latest --target "$work/restore-$tool" ;;
    repo:check|base:check) measure "$tool" check "$bin" --repo "$r" -q check --read-data ;;
    restic:init) measure restic init restic -r "$r" --cache-dir "$work/restic-cache" init --repository-version 2 ;;
    restic:initial|restic:incremental) measure restic "$step" restic -r "$r" --cache-dir "$work/restic-cache" backup --compression auto -q "$data" ;;
    restic:restore) measure restic restore restic -r "$r" --cache-dir "$work/restic-cache" restore latest -q --target "$work/restore-restic" ;;
    restic:check) measure restic check restic -r "$r" --cache-dir "$work/restic-cache" check --read-data ;;
    borg:init) measure borg init borg init --encryption repokey-blake2 "$r" ;;
    borg:initial) measure borg initial borg create --compression zstd,3 "$r::initial" "$data" ;;
    borg:incremental) measure borg incremental borg create --compression zstd,3 "$r::incremental" "$data" ;;
    borg:restore) measure borg restore bash -c "mkdir -p '$work/restore-borg' && cd '$work/restore-borg' && borg extract '$r::incremental'" ;;
    borg:check) measure borg check borg check --verify-data "$r" ;;
    # bupstash has no full-repository check: reading the latest backup back verifies it.
    bupstash:init) bupstash new-key -o "$work/bupstash.key" && measure bupstash init bupstash init -r "$r" ;;
    bupstash:initial|bupstash:incremental) measure bupstash "$step" bupstash put -q -r "$r" -k "$work/bupstash.key" --send-log "$work/bupstash.sendlog" step="$step" "$data" ;;
    bupstash:restore) measure bupstash restore bash -c "mkdir -p '$work/restore-bupstash$data' && bupstash restore -r '$r' -k '$work/bupstash.key' --into '$work/restore-bupstash$data' step=incremental" ;;
    bupstash:check) measure bupstash check bash -c "bupstash get -r '$r' -k '$work/bupstash.key' step=incremental >/dev/null" ;;
  esac
}

IFS=, read -r -a tool_list <<<"$tools"
for t in "${tool_list[@]}"; do rm -rf "$(repo_of "$t")" "$work/restore-$t"; done
rm -rf "$work/restic-cache" "$work/borg-home" "$work/cache" "$work/bupstash.key" "$work/bupstash.sendlog"

find "$data" -type f -exec cat {} + >/dev/null # warm the page cache
for step in init initial; do
  for t in "${tool_list[@]}"; do run_tool "$t" "$step"; done
done
echo "applying the nightly change ..."
if [ "$dataset" = real ]; then
  python3 benches/dataset.py change-tree "$data"
else
  python3 benches/dataset.py change "$data" "$scale"
fi
sync
changed_files=$(find "$data" -type f | wc -l)
for step in incremental restore check; do
  for t in "${tool_list[@]}"; do
    run_tool "$t" "$step"
    if [ "$step" = restore ]; then
      python3 benches/verify.py "$data" "$work/restore-$t$data" || { echo "$t restore differs from the source" >&2; exit 1; }
      [ "$keep" = 1 ] || rm -rf "$work/restore-$t" # disk: one restored copy at a time
    fi
  done
done

echo
echo "dataset: $src_files files, $src_bytes bytes (scale $scale); after the change: $changed_files files"
echo "settings: encryption on for all; compression zstd fast class (restic --compression auto, borg zstd,3, bupstash level 3, repo its default); $threads threads (borg: 1)"
echo "versions: $("$repo_bin" --version) | $(restic version | cut -d' ' -f1-2) | $(borg --version) | $(command -v bupstash >/dev/null && bupstash version)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); warm page cache"
python3 benches/table.py "$results" "$src_bytes"
