#!/usr/bin/env bash
# Stops or starts one daemon of one test bed host, for tests that cause faults
# for real. As root on the machine:
#   bash test/testbed/daemon.sh stop  dockerd <host init pid>
#   bash test/testbed/daemon.sh start dockerd <host init pid>
#   bash test/testbed/daemon.sh stop  sshd    <host init pid>    (open sessions stay)
#   bash test/testbed/daemon.sh start sshd    <host init pid> <addr> <port>
#   bash test/testbed/daemon.sh kill-sessions sshd <host init pid>   (drops every SSH connection)
#   bash test/testbed/daemon.sh cut sshd <host init pid>   (drops every connection and takes no new ones)
# Every wait is bounded.
set -euo pipefail
action=${1:?action} daemon=${2:?daemon} pid=${3:?host init pid}
kill -0 "$pid" 2>/dev/null || { echo "daemon.sh: no test bed host with pid $pid" >&2; exit 1; }
[ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] \
  || { echo "daemon.sh: pid $pid shares our mount namespace; not a test bed host" >&2; exit 1; }
here=$(dirname "${BASH_SOURCE[0]}")

case "$action:$daemon" in
  stop:dockerd | stop:sshd | kill-sessions:sshd | cut:sshd) ;;
  start:dockerd) exec bash "$here/restart-dockerd.sh" "$pid" ;;
  start:sshd) addr=${4:?addr} port=${5:?port} ;;
  *) echo "daemon.sh: unknown $action $daemon" >&2; exit 2 ;;
esac

exec nsenter -t "$pid" -m -u -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  ACTION="$action" DAEMON="$daemon" ADDR="${addr:-}" PORT="${port:-}" bash -s <<'IN_HOST'
set -euo pipefail
pidfile=/run/testbed-$DAEMON.pid
old=$(cat "$pidfile" 2>/dev/null || true)
# The pid file can be stale (a start whose bind failed): find this host's sshd listener by its mount namespace.
if [ "$DAEMON" = sshd ] && { [ -z "$old" ] || ! kill -0 "$old" 2>/dev/null; }; then
  old=$(for p in $(pgrep -f '^sshd: /usr/sbin/sshd' || true); do
    [ "$(readlink "/proc/$p/ns/mnt")" = "$(readlink /proc/self/ns/mnt)" ] && echo "$p"
  done | head -n 1) || true
fi
case "$ACTION" in
  stop)
    [ -n "$old" ] && kill -0 "$old" 2>/dev/null || exit 0
    kill -TERM "$old"
    for _ in $(seq 1 80); do kill -0 "$old" 2>/dev/null || exit 0; sleep 0.25; done
    echo "daemon.sh: $DAEMON $old did not stop within 20 s" >&2; exit 1 ;;
  kill-sessions | cut)
    # Each connection is a privileged sshd-session under the listener with the user's
    # sshd-session under it; both hold the socket. The commands they run are left alone.
    [ -n "$old" ] || exit 0
    # cut: a stopped listener accepts nothing while its sessions go, then it ends.
    [ "$ACTION" = cut ] && kill -STOP "$old"
    monitors=$(pgrep -P "$old" || true)
    users=$(for m in $monitors; do pgrep -P "$m" -f '^sshd' || true; done)
    # shellcheck disable=SC2086
    [ -z "$monitors$users" ] || kill -KILL $monitors $users 2>/dev/null || true
    if [ "$ACTION" = cut ]; then kill -KILL "$old"; rm -f "$pidfile"; fi ;;
  start)
    if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then echo "$old" >"$pidfile"; exit 0; fi
    setsid /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config -o "ListenAddress=$ADDR:$PORT" \
      >>/var/log/testbed-sshd.log 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 40); do
      if (exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null; then exit 0; fi
      sleep 0.25
    done
    echo "daemon.sh: sshd did not listen on $ADDR:$PORT within 10 s" >&2; exit 1 ;;
esac
IN_HOST
