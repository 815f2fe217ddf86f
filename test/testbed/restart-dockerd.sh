#!/usr/bin/env bash
# Restarts the dockerd of one test bed host the way host-init.sh starts it (own
# network namespace, /etc/docker/daemon.json), so a test can change daemon.json
# and have it read. Usage, as root on the machine:
#   bash test/testbed/restart-dockerd.sh <host init pid>     (TESTBED_HOSTn_PID of the env file)
# Stops the running dockerd (and with it the host's containers), starts a new one
# and waits until it answers; every wait is bounded.
set -euo pipefail
pid=${1:?usage: restart-dockerd.sh <host init pid>}
kill -0 "$pid" 2>/dev/null || { echo "restart-dockerd: no test bed host with pid $pid" >&2; exit 1; }
[ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] \
  || { echo "restart-dockerd: pid $pid shares our mount namespace; not a test bed host" >&2; exit 1; }

# The same clean environment host-init.sh gives dockerd (containerd finds criu and runc in this PATH).
exec nsenter -t "$pid" -m -u -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  bash -s <<'IN_HOST'
set -euo pipefail
old=$(cat /run/testbed-dockerd.pid 2>/dev/null || true)
if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
  kill -TERM "$old"
  for _ in $(seq 1 80); do kill -0 "$old" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$old" 2>/dev/null; then echo "restart-dockerd: dockerd $old did not stop within 20 s" >&2; exit 1; fi
fi
# setsid: the daemon must not belong to the caller's session or keep its descriptors.
setsid unshare -n bash -c 'ip link set lo up; exec dockerd --config-file /etc/docker/daemon.json' \
  >>/var/log/testbed-dockerd.log 2>&1 </dev/null &
echo $! >/run/testbed-dockerd.pid
for _ in $(seq 1 120); do
  if docker version >/dev/null 2>&1; then exit 0; fi
  kill -0 "$(cat /run/testbed-dockerd.pid)" 2>/dev/null || break
  sleep 0.5
done
echo "restart-dockerd: dockerd did not answer within 60 s" >&2
tail -n 20 /var/log/testbed-dockerd.log >&2
exit 1
IN_HOST
