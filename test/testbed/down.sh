#!/usr/bin/env bash
# Stops exactly what up.sh started: every process in each host's mount
# namespace (dockerd first, so it can stop its containers; the store host has
# none), then the host.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ns_members() { local ns=$1 p; for p in /proc/[0-9]*; do [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"; done; return 0; }

stop_host() {
  local n=$1 dir pid ns i
  dir=$(host_dir "$n")
  pid=$(cat "$dir/pid" 2>/dev/null || true)
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then rm -f "$dir/pid"; log "host$n is not running"; return; fi
  ns=$(readlink "/proc/$pid/ns/mnt")
  [ "$ns" != "$(readlink /proc/self/ns/mnt)" ] || die "host$n pid $pid shares our mount namespace; refusing to kill it"
  log "stopping host$n (pid $pid)"
  if [ "$(host_init "$n")" = systemd ]; then
    # Power off: systemd stops dockerd (and its containers) and sshd, then exits; the kernel
    # ends whatever is left of its PID namespace with it.
    kill -s RTMIN+4 "$pid" 2>/dev/null || true
    for i in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  elif [ "$(host_role "$n")" = docker ]; then
    nsenter -t "$pid" -m -- sh -c 'kill -TERM $(cat /run/testbed-dockerd.pid) 2>/dev/null' || true
    for i in $(seq 1 40); do
      nsenter -t "$pid" -m -- sh -c 'kill -0 $(cat /run/testbed-dockerd.pid) 2>/dev/null' || break
      sleep 0.5
    done
  fi
  for sig in TERM KILL; do
    # shellcheck disable=SC2046
    kill -s "$sig" $(ns_members "$ns") 2>/dev/null || true
    for i in $(seq 1 20); do [ -z "$(ns_members "$ns")" ] && break; sleep 0.25; done
  done
  [ -z "$(ns_members "$ns")" ] || die "host$n: processes still running: $(ns_members "$ns" | tr '\n' ' ')"
  rm -f "$dir/pid" "$dir/pid.outer"
  [ "$(host_cgroup "$n")" = v1 ] || remove_cgroup_dir "$(host_cgroup_dir "$n")"
}

# A cgroup v2 host's own directory in the machine's cgroup2 hierarchy, deepest first; the
# processes are gone, so anything that stays is a leak worth failing for.
remove_cgroup_dir() {
  local cg=$1 i
  [ -d "$cg" ] || return 0
  for i in $(seq 1 20); do
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ -d "$cg" ] || return 0
    sleep 0.25
  done
  die "cgroup $cg is still there: $(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')"
}

for n in $TESTBED_HOSTS; do stop_host "$n"; done
# Containers' cgroups outlive a killed daemon on cgroup v1, and CRIU on a cgroup v2 host may
# make empty docker/<id> or system.slice/docker-<id>.scope directories in the machine's v1
# hierarchies while restoring: remove the empty ones, and say when something stays.
find /sys/fs/cgroup/*/docker -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
find /sys/fs/cgroup/*/system.slice -maxdepth 1 -type d -name 'docker-*.scope' -exec rmdir {} \; 2>/dev/null || true
left=$(find /sys/fs/cgroup/*/docker /sys/fs/cgroup/*/system.slice -mindepth 1 -maxdepth 1 -type d \( -path '*/docker/*' -o -name 'docker-*.scope' \) 2>/dev/null || true)
[ -z "$left" ] || log "warning: container cgroups still in the machine's hierarchies (a container of another bed may still run): $(echo "$left" | tr '\n' ' ')"
log "test bed down"
