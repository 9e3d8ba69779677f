#!/usr/bin/env bash
# MongoDB snapshot and restore throughput on a private SecantusDB (scripts/mongodb-server):
# N documents of ~300 bytes (default 100,000) in one collection with two secondary
# indexes; then `repo snapshot` (documents/s, MB/s of raw BSON, peak RSS), snapshots of
# the unchanged server (time and what each adds: reading everything, then taking the
# collection from the parent because the oplog shows no write), and `repo restore` into a fresh
# database (documents/s, MB/s, peak RSS), compared document by document.
#
#   benches/mongo.sh [--docs N] [--work DIR] [--bin REPO]   (--bin: another build, to compare)
set -euo pipefail
cd "$(dirname "$0")/.."
docs=100000
work=""
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --docs) docs="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
work="${work:-${TMPDIR:-/tmp}/repo-mongo-bench}"
. benches/mongo-setup.sh
"$py" - "$uri" "$docs" <<'PY'
import sys, pymongo
c = pymongo.MongoClient(sys.argv[1]).bench.users
n = int(sys.argv[2])
for s in range(0, n, 5000):
    c.insert_many([{"_id": i, "name": "user%07d" % i, "email": "user%d@example.com" % i,
                    "tags": ["a", "b"], "score": i * 7 % 1000, "bio": "x" * 200}
                   for i in range(s, min(n, s + 5000))])
c.create_index("email", unique=True)
c.create_index([("score", 1), ("name", -1)])
PY
bytes=$("$py" -c "import sys,pymongo; print(pymongo.MongoClient(sys.argv[1]).bench.command('collStats','users')['size'])" "$uri")
rate() { python3 -c "d=$1; b=$2; t=$3; print('%.0f documents/s, %.1f MB/s' % (d/t, b/t/1e6))"; }
t0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/snap.rss" "$bin" snapshot "$uri" --db bench --quiet
t1=$(date +%s.%N)
echo "snapshot: $docs documents ($((bytes / 1000000)) MB of BSON) in $(python3 -c "print('%.2f' % ($t1 - $t0))") s: $(rate "$docs" "$bytes" "$(python3 -c "print($t1 - $t0)")"), peak RSS $(( $(tail -1 "$work/snap.rss") / 1024 )) MiB"
# A snapshot of the unchanged server: reading every collection, then as it runs by default
# (the oplog since the parent says nothing was written), then with a slice from `follow`.
again() {
  local label="$1"; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" snapshot "$uri" --db bench --json "$@" >"$work/again.json" 2>"$work/again.err"
  t1=$(date +%s.%N)
  local added
  added=$(python3 -c 'import sys,json; print(json.load(open(sys.argv[1]))["summary"]["bytes_added"])' "$work/again.json")
  echo "$label: $(python3 -c "print('%.2f' % ($t1 - $t0))") s, added $added bytes"
  grep -o 'mongodb: .*' "$work/again.err" | sed 's/^/  /' || true
}
again "unchanged, every collection read (--force-full)" --force-full
again "unchanged, by default (what the server wrote since: its change stream, else its oplog)"
"$bin" mongodb follow --mongodb-uri "$uri" --once --quiet
again "unchanged, after follow sealed a slice"
t0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/restore.rss" "$bin" restore latest --mongodb-uri "$uri" --ns-rename 'bench.*:bench_r.*' --quiet >/dev/null
t1=$(date +%s.%N)
echo "restore: $(python3 -c "print('%.2f' % ($t1 - $t0))") s: $(rate "$docs" "$bytes" "$(python3 -c "print($t1 - $t0)")"), peak RSS $(( $(tail -1 "$work/restore.rss") / 1024 )) MiB"
"$py" - "$uri" <<'PY'
import sys, pymongo, bson
c = pymongo.MongoClient(sys.argv[1], document_class=bson.raw_bson.RawBSONDocument)
a = [d.raw for d in c.bench.users.find().sort("_id", 1)]
b = [d.raw for d in c.bench_r.users.find().sort("_id", 1)]
assert a == b, "restored documents differ"
print("restored documents are byte-identical (%d)" % len(b))
PY
