# Shared helpers for the cluster scripts: readable progress lines and one-sentence failures.
_t0=$(date +%s)
log() { printf '[cluster %4ss] %s\n' "$(( $(date +%s) - _t0 ))" "$*" >&2; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }
_step_name=""; _step_t=0
step_start() { _step_name=$1; _step_t=$(date +%s); log "$1 ..."; }
step_end() { log "$_step_name: done in $(( $(date +%s) - _step_t ))s"; }

# Processes the cluster started are tracked by pid file; only those are ever stopped.
pidfile() { echo "$RUN_DIR/$1.pid"; }
is_running() {
  local f; f=$(pidfile "$1")
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}
# start NAME CMD...: runs CMD in the background, logging to $KT_CLUSTER_DIR/logs/NAME.log.
start_daemon() {
  local name=$1; shift
  mkdir -p "$KT_CLUSTER_DIR/logs" "$RUN_DIR"
  # setsid: a Ctrl-C in the terminal that ran `up` must not stop the cluster.
  setsid "$@" >>"$KT_CLUSTER_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile "$name")"
}
# stop_daemons NAME...: SIGTERM to all at once, SIGKILL to whatever still runs after 10 s.
stop_daemons() {
  local name pids=() i pid alive
  for name in "$@"; do
    [ -f "$(pidfile "$name")" ] || continue
    pid=$(cat "$(pidfile "$name")")
    kill "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$(pidfile "$name")"
  done
  for i in $(seq 1 50); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && return 0
    sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  return 0
}
# wait_for DESCRIPTION SECONDS CMD...: polls CMD until it succeeds, or dies naming the log to read.
wait_for() {
  local what=$1 secs=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "$what did not come up within ${secs}s; see $KT_CLUSTER_DIR/logs/ ('npm run cluster:logs')."
    sleep 0.5
  done
}
kctl() { "$BIN_DIR/kubectl" --kubeconfig "$KT_CLUSTER_DIR/admin.kubeconfig" "$@"; }
port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q . ; }
