#!/usr/bin/env bash
# Leak guard: what the suite started must be gone when it ends.
#
#   eval "$(bash scripts/ci/leak_guard.sh snapshot STATE)"   # before: records, prints the marker export
#   bash scripts/ci/leak_guard.sh check STATE                # after: exit 1 naming each leftover
#
# snapshot records the engine processes and flyte-* folders of the temp dirs that exist already,
# and prints `export FLYTE_LEAK_GUARD=<token>`: every process the suite starts inherits it.
# check fails for an engine process (java SparkSubmit / Spark Connect / Spark master or worker,
# raylet, gcs_server, Ray's workers and agents, dask scheduler / worker / nanny, torchrun /
# elastic workers, multiprocessing spawn children: LocalCluster's and Elastic's workers, the real
# control plane's etcd, kube-apiserver and kube-controller-manager) that carries this run's marker (or whose environment cannot be read) and was
# not in the snapshot, and for a flyte-* folder in $TMPDIR or /tmp that was not in the snapshot
# (the reused caches named in KEEP excepted).
set -euo pipefail

KEEP='^flyte-smoke-venvs$'
ENGINE='/(etcd|kube-apiserver|kube-controller-manager) |SparkSubmit|org\.apache\.spark\.(deploy|sql\.connect)|SparkConnectServer|raylet|gcs_server|ray::|ray/_private/(workers|log_monitor|monitor)|dashboard/(agent|dashboard)\.py|runtime_env/agent|dask[ _-](scheduler|worker)|distributed\.cli|dask_(scheduler|worker)|nanny|torchrun|torch\.distributed\.(run|launch)|torch\.distributed\.elastic|pytorch_worker|multiprocessing\.spawn|multiprocessing-fork|multiprocessing\.forkserver'

usage() { echo "usage: $0 snapshot|check STATE" >&2; exit 2; }
[ $# -eq 2 ] || usage
mode=$1 state=$2

temp_dirs() { printf '%s\n' "${TMPDIR:-/tmp}" /tmp | sort -u; }

# "<pid> <start ticks> <command line>" of every engine process.
engine_procs() {
  local dir pid start cmd
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = "$$" ] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline") || continue
    [ -n "$cmd" ] || continue
    grep -Eq -- "$ENGINE" <<<"$cmd" || continue
    start=$(awk '{print $22}' 2>/dev/null "$dir/stat") || continue
    printf '%s %s %s\n' "$pid" "$start" "$cmd"
  done
}

scratch_dirs() {
  local base
  temp_dirs | while read -r base; do
    find "$base" -mindepth 1 -maxdepth 1 -type d -name 'flyte-*' 2>/dev/null || true
  done | sort -u
}

# 0 when the process carries this run's marker, or its environment is unreadable.
marked() {
  local env
  env=$(tr '\0' '\n' 2>/dev/null <"/proc/$1/environ") || return 0
  grep -qx "FLYTE_LEAK_GUARD=$FLYTE_LEAK_GUARD" <<<"$env"
}

case $mode in
  snapshot)
    token="$(date +%s)-$$-$RANDOM"
    {
      echo "token $token"
      engine_procs | awk '{print "proc " $1 " " $2}'
      scratch_dirs | sed 's/^/dir /'
    } >"$state"
    echo "export FLYTE_LEAK_GUARD=$token"
    ;;
  check)
    [ -f "$state" ] || { echo "leak guard: no snapshot at $state" >&2; exit 2; }
    FLYTE_LEAK_GUARD=$(awk '$1 == "token" {print $2}' "$state")
    leaks=()
    while read -r pid start cmd; do
      grep -qx "proc $pid $start" "$state" && continue
      marked "$pid" || continue
      leaks+=("process $pid: ${cmd:0:300}")
    done < <(engine_procs)
    folders=()
    while read -r path; do
      [ -n "$path" ] || continue
      grep -qxF "dir $path" "$state" && continue
      grep -Eq -- "$KEEP" <<<"$(basename "$path")" && continue
      folders+=("folder $path")
    done < <(scratch_dirs)
    # Folders are attributed by time only (not by marker): a run beside other work on one machine
    # sees theirs too, and can pass FLYTE_LEAK_GUARD_STRICT_DIRS=0 to make them a warning.
    if [ ${#folders[@]} -gt 0 ]; then
      if [ "${FLYTE_LEAK_GUARD_STRICT_DIRS:-1}" = "1" ]; then
        leaks+=("${folders[@]}")
      else
        echo "leak guard: warning: ${#folders[@]} new flyte-* folder(s):" >&2
        printf '  %s\n' "${folders[@]}" >&2
      fi
    fi
    if [ ${#leaks[@]} -gt 0 ]; then
      echo "leak guard: the suite left ${#leaks[@]} thing(s) behind:" >&2
      printf '  %s\n' "${leaks[@]}" >&2
      exit 1
    fi
    echo "leak guard: no engine process or flyte-* folder left behind"
    ;;
  *) usage ;;
esac
