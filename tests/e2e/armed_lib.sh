# shellcheck shell=bash
# A controller killed with SIGKILL the moment its log shows a line
# (source after lib.sh and upgrade_lib.sh); test_crash.sh uses its
# armed_reader (with its own start_armed).
#
#   armed_start NAME ERE [flags...]   start $TQU_BIN (JSON debug log to
#                                     $UP_DIR/NAME.log) through armed_reader,
#                                     which SIGKILLs it when a line matches ERE
#                                     (a Perl regex); $UP_DIR/NAME.fired then
#                                     exists; UP_PIDS[NAME] is its pid
#   armed_kill9 NAME                  SIGKILL (if still alive), wait until gone
#   armed_started_re STEP             the regex of the engine's "step started"

# perl reads the pipe in blocks (bash's read takes a byte per system call
# and falls milliseconds behind a burst of log lines); the kill comes from
# the process that reads the line.
armed_reader() {
  perl -e '
    my ($base, $re) = @ARGV;
    open(my $log, ">>", "$base.log") or die "$base.log: $!";
    $log->autoflush(1);
    my $fired = 0;
    while (my $l = <STDIN>) {
      print $log $l;
      next if $fired || $l !~ /$re/;
      open(my $p, "<", "$base.pid") or next;
      my $pid = <$p>;
      chomp $pid;
      kill "KILL", $pid;
      $fired = 1;
      open(my $f, ">", "$base.fired");
    }' "$1" "$2"
}

armed_start() {
  local name=$1 ere=$2
  shift 2
  rm -f "$UP_DIR/$name.pid" "$UP_DIR/$name.fired"
  # in a subshell that reaps it, so that bash does not report its death
  # by a signal it did not send itself
  (
    "$TQU_BIN" --kubeconfig "${UP_KUBECONFIG:-$TQU_KUBECONFIG_ADMIN}" --health-addr 127.0.0.1:0 \
      --log-format json --log-level debug "$@" > >(armed_reader "$UP_DIR/$name" "$ere") 2>&1 &
    echo "$!" > "$UP_DIR/$name.pid.tmp" && mv "$UP_DIR/$name.pid.tmp" "$UP_DIR/$name.pid"
    wait "$!"
  ) 2>/dev/null &
  e2e_eventually 10 test -s "$UP_DIR/$name.pid"
  UP_PIDS[$name]=$(cat "$UP_DIR/$name.pid")
}

armed_kill9() {
  local pid=${UP_PIDS[$1]:-}
  [ -n "$pid" ] || return 1
  kill -KILL "$pid" 2>/dev/null
  e2e_eventually 10 bash -c "! kill -0 $pid 2>/dev/null"   # not our child: polled
  unset "UP_PIDS[$1]"
}

armed_started_re() { printf '"msg":"step started".*"step":"%s"' "$1"; }
