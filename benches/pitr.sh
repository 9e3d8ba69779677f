#!/usr/bin/env bash
# MongoDB point-in-time recovery figures: repository bytes per 1,000 captured oplog entries
# and replay speed (entries/s), on a private SecantusDB (scripts/mongodb-server).
#
#   benches/pitr.sh [--docs N] [--work DIR] [--bin REPO]   (--bin: another build, to compare)
#
# Workload after a base snapshot: N inserts of ~300-byte documents (batches of 1,000),
# N single-field updates ($set), N/2 array pushes, N/10 deletes — each a separate oplog
# entry; with --collections K the documents are spread over K collections and the
# updates and pushes go round-robin across them (interleaved in the oplog). `repo mongodb follow --once` captures them; the repository growth (pack files,
# index segments, slice objects) is divided by the entries captured. Then
# `repo restore --at now` restores the snapshot into a fresh database and replays them;
# the replay rate is what `repo` reports for the replay alone, next to the rate at which
# the same server took the original writes, and the peak RSS of follow and of the restore.
set -euo pipefail
cd "$(dirname "$0")/.."
docs=20000
colls=1
work=""
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --collections) colls="$2"; shift 2 ;;
    --docs) docs="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
work="${work:-${TMPDIR:-/tmp}/repo-pitr-bench}"
. benches/mongo-setup.sh
"$py" - "$uri" 100 "$colls" <<'PY'
import sys, pymongo
c = pymongo.MongoClient(sys.argv[1])
for k in range(int(sys.argv[3])):
    c.bench["c%d" % k].insert_many([{"_id": -i, "seed": True} for i in range(1, int(sys.argv[2]) + 1)])
PY
"$bin" snapshot "$uri" --db bench --quiet
before=$(du -sb "$work/repo" | cut -f1)
"$py" - "$uri" "$docs" "$colls" <<'PY'
import sys, time, pymongo
db = pymongo.MongoClient(sys.argv[1]).bench
n, k = int(sys.argv[2]), int(sys.argv[3])
cs = [db["c%d" % j] for j in range(k)]
started = time.time()
for s in range(0, n, 1000):
    for j, c in enumerate(cs):
        c.insert_many([{"_id": i, "name": "user%07d" % i, "email": "user%d@example.com" % i,
                        "tags": ["a", "b"], "score": i * 7 % 1000, "bio": "x" * 200}
                       for i in range(s, min(n, s + 1000)) if i % k == j])
for i in range(n):
    cs[i % k].update_one({"_id": i}, {"$set": {"score": i % 97}})
for i in range(0, n, 2):
    cs[i % k].update_one({"_id": i}, {"$push": {"tags": "c"}})
for c in cs:
    c.delete_many({"_id": {"$lt": n // 10}})
took = time.time() - started
print("original writes: %.2f s (one client, as the workload issued them)" % took)
PY
sleep 1.2
at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
out=$(/usr/bin/time -f "%M" -o "$work/follow.rss" "$bin" mongodb follow --mongodb-uri "$uri" --db bench --once --json)
after=$(du -sb "$work/repo" | cut -f1)
entries=$(echo "$out" | python3 -c 'import sys, json; print(sum(json.loads(l)["entries"] for l in sys.stdin))')
raw=$(echo "$out" | python3 -c 'import sys, json; print(sum(json.loads(l)["bytes"] for l in sys.stdin))')
added=$((after - before))
echo "captured $entries oplog entries: $raw bytes raw, repository grew $added bytes"
python3 -c "print('slice overhead: %.0f repository bytes per 1,000 entries (raw oplog %.0f per 1,000)' % ($added * 1000 / $entries, $raw * 1000 / $entries))"
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/restore.rss" "$bin" restore --at "$at" --mongodb-uri "$uri" --ns-rename 'bench.*:bench_restored.*' | tail -1
end=$(date +%s.%N)
python3 -c "print('restore --at (snapshot + replay) wall: %.2f s' % ($end - $start))"
echo "peak RSS: follow $(( $(tail -1 "$work/follow.rss") / 1024 )) MiB, restore --at $(( $(tail -1 "$work/restore.rss") / 1024 )) MiB"
