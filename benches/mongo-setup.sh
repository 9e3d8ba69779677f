# Sourced by the MongoDB benchmarks (mongo.sh, pitr.sh) after their options are read:
# builds `repo` unless $bin names another build, starts a private SecantusDB under
# $work/db (stopped on exit), and initialises a repository in $work/repo. Sets $bin, $uri
# (the server) and $py (a Python with pymongo, from the server's venv).
rm -rf "$work"; mkdir -p "$work"
. scripts/deps.sh
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin="$CARGO_TARGET_DIR/release/repo"
fi
trap 'scripts/mongodb-server stop "$work/db"' EXIT
uri=$(scripts/mongodb-server start "$work/db")
py="$(dirname "$(scripts/mongodb-server bin)")/python"
export REPO_REPOSITORY="$work/repo" REPO_PASSWORD=bench XDG_CACHE_HOME="$work/cache"
"$bin" init --quiet
