#!/usr/bin/env bash
# A lab of Debian machines booted with real systemd (systemd-nspawn -b), on a bridge of their own, reached over SSH:
# the hosts the Ansible tests deploy to. Needs root, debootstrap and systemd-container (.ci/run installs them).
#   lab.sh rootfs <folder>                         build the base image once (debootstrap; reused when present; one
#                                                  build at a time, a second call waits for the first)
#   lab.sh up <workdir> <rootfs> <cidr> <name>=<ip>...   copy the image per machine, boot them, wait for SSH
#   lab.sh crash <workdir> <name>                  power a machine off hard: its init is killed, with every process in it
#   lab.sh down <workdir>                          stop the machines this lab started (by PID) and remove the bridge
set -euo pipefail

# Everything a role installs is in the image already: the tests have no Debian mirror inside the lab, as an
# air-gapped site would have its own. The roles' apt tasks then find the packages present.
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,openssh-server,libicu72,iproute2,nftables,haproxy,postgresql,python3-psycopg2
MIRROR="${LAB_MIRROR:-http://deb.debian.org/debian}"

rootfs() {
  local folder="$1"
  # One build at a time: tests/run.sh starts one in the background while the solution builds, and the lab's own call
  # waits here for it, then finds the image ready.
  mkdir -p "$(dirname "$folder")"
  exec 9>>"$folder.lock"
  if ! flock -n 9; then
    echo "waiting for another build of $folder" >&2
    flock -w 900 9 || { echo "error: the other build of $folder did not finish within 15 minutes" >&2; exit 1; }
  fi
  if [ -f "$folder/.lab-ready" ] && [ "$(cat "$folder/.lab-ready")" = "$PACKAGES" ]; then
    return 0
  fi
  rm -rf "$folder"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$folder" "$MIRROR" >"$folder.log" 2>&1 9>&- \
    || { tail -20 "$folder.log" >&2; exit 1; }
  # Services start where a role says so; networkd brings up the lab address.
  systemctl --root="$folder" disable postgresql haproxy >/dev/null 2>&1 || true
  systemctl --root="$folder" enable systemd-networkd >/dev/null 2>&1
  rm -rf "$folder"/var/cache/apt/archives/*.deb "$folder"/var/lib/apt/lists/*
  echo "$PACKAGES" > "$folder/.lab-ready"
}

up() {
  local work="$1" image="$2" cidr="$3"; shift 3
  local bridge prefix gateway
  bridge="$(cat "$work/bridge" 2>/dev/null || echo "lab$RANDOM")"
  prefix="${cidr#*/}"
  gateway="${cidr%/*}"
  mkdir -p "$work"
  echo "$bridge" > "$work/bridge"
  ip link add "$bridge" type bridge 2>/dev/null || true
  ip address replace "$gateway/$prefix" dev "$bridge"
  ip link set "$bridge" up
  [ -f "$work/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$work/id_ed25519"
  for machine in "$@"; do
    local name="${machine%%=*}" address="${machine#*=}" root="$work/machines/${machine%%=*}"
    rm -rf "$root"
    mkdir -p "$work/machines"
    cp -a "$image" "$root"
    echo "$name" > "$root/etc/hostname"
    mkdir -p "$root/root/.ssh" "$root/etc/systemd/network"
    cp "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
    chmod 700 "$root/root/.ssh"
    # 10-: before the built-in host0 configuration, which would ask for DHCP.
    printf '[Match]\nName=host0\n\n[Network]\nAddress=%s/%s\n' "$address" "$prefix" > "$root/etc/systemd/network/10-host0.network"
    setsid systemd-nspawn -b --register=no --keep-unit -D "$root" -M "$name" --network-bridge="$bridge" \
      --console=read-only >"$work/$name.console" 2>&1 < /dev/null &
    echo $! > "$work/$name.pid"
  done
  for machine in "$@"; do
    local address="${machine#*=}" deadline=$((SECONDS + 120))
    until ssh -q -i "$work/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=2 \
        -o BatchMode=yes "root@$address" true 2>/dev/null; do
      if [ "$SECONDS" -gt "$deadline" ]; then
        echo "error: ${machine%%=*} ($address) did not answer over SSH within 120 s" >&2
        tail -30 "$work/${machine%%=*}.console" >&2
        exit 1
      fi
      sleep 1
    done
  done
}

is_machine() {
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = systemd-nspawn ]
}

crash() {
  local work="$1" name="$2" pid init
  pid="$(cat "$work/$name.pid")"
  is_machine "$pid" || { echo "error: $name is not running (pid $pid is not its nspawn)" >&2; return 1; }
  # The container's init is nspawn's child; when it dies the kernel ends its whole PID namespace at once.
  init="$(pgrep -P "$pid" | head -n 1)"
  [ -n "$init" ] && kill -9 "$init"
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$work/$name.pid"
}

down() {
  local work="$1" pidfile pid deadline
  # The machines are thrown away: no orderly shutdown (stopping their services took most of the teardown). Each
  # machine's init goes at once, which ends its whole PID namespace; nspawn then exits on its own.
  for pidfile in "$work"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    # A pid file outliving its machine may name another process by now: only a machine's nspawn is touched.
    if is_machine "$pid"; then pgrep -P "$pid" | xargs -r kill -9 2>/dev/null || true; fi
  done
  deadline=$((SECONDS + 15))
  for pidfile in "$work"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    while is_machine "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if is_machine "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
  done
  # The host ends of the machines' veth pairs can outlive a machine for a while: remove them with the bridge.
  for machine in "$work"/machines/*; do
    [ -e "$machine" ] && ip link delete "vb-$(basename "$machine")" 2>/dev/null || true
  done
  if [ -f "$work/bridge" ]; then
    ip link delete "$(cat "$work/bridge")" 2>/dev/null || true
  fi
  rm -rf "$work/machines"
}

command="${1:?usage: lab.sh rootfs|up|crash|down ...}"; shift
"$command" "$@"
