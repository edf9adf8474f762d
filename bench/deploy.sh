#!/usr/bin/env bash
# Benchmark: `dockertls deploy --all` to N real sshd hosts on 127.0.0.1 (each its own host key,
# port and --remote-root), with --jobs 1 and --jobs N, in two cases, each with one shared SSH
# connection per host (deploy's default) and with a connection per call (what deploy did
# before: `--ssh-option ControlMaster=no`, which wins over deploy's own):
#   send     the host has no dockertls: the server folder and this binary are sent, install runs
#   current  the host has this very binary on its PATH and the files installed: one look, no
#            files sent, install says "nothing to change" (what a timer's `deploy --all` costs)
# Needs root (sshd), openssh-server and openssh-client.
#
#   bench/deploy.sh [HOSTS] [RUNS]      (defaults: 8 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-8}
runs=${2:-3}
cargo build --release --quiet
bin=$PWD/target/release/dockertls
work=$(mktemp -d /root/dockertls-bench-deploy.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p /run/sshd "$work/bin"
cp "$bin" "$work/bin/dockertls"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/userkey"
cp "$work/userkey.pub" "$work/authorized_keys"
: > "$work/known_hosts"

# start_sshd I PORT PATH: a real sshd for host I whose sessions get PATH.
start_sshd() {
  local i=$1 port=$2 path=$3 d=$work/host$1
  mkdir -p "$d/root/lib/systemd/system"
  printf '[Service]\nExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock\n' \
    > "$d/root/lib/systemd/system/docker.service"
  [ -f "$d/hostkey" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/hostkey"
  cat > "$d/sshd_config" <<CFG
SetEnv PATH=$path
Port $port
ListenAddress 127.0.0.1
HostKey $d/hostkey
AuthorizedKeysFile $work/authorized_keys
PasswordAuthentication no
PermitRootLogin prohibit-password
PidFile $d/sshd.pid
StrictModes no
UsePAM no
MaxStartups 100:30:200
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
  /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" &
  pids+=($!)
  echo "[127.0.0.1]:$port $(cut -d ' ' -f 1,2 "$d/hostkey.pub")" >> "$work/known_hosts"
}

ports=()
for ((i = 1; i <= hosts; i++)); do
  ports+=($(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'))
done
ssh_opts=(--ssh-option "IdentityFile=$work/userkey" --ssh-option IdentitiesOnly=yes
  --ssh-option "UserKnownHostsFile=$work/known_hosts")

setup_pki() {
  rm -rf "$work/pki"
  "$bin" --dir "$work/pki" init --host s1.test --name s1 --client alice --listen 127.0.0.1:2376 >/dev/null
  for ((i = 2; i <= hosts; i++)); do
    "$bin" --dir "$work/pki" server add "s$i" --host "s$i.test" --listen 127.0.0.1:2376 >/dev/null
  done
}

# first_deploy: every server to its host once (remembers the host and the root).
first_deploy() {
  local i
  for ((i = 1; i <= hosts; i++)); do
    "$bin" --dir "$work/pki" deploy "s$i" "root@127.0.0.1:${ports[i-1]}" \
      --remote-root "$work/host$i/root" "${ssh_opts[@]}" >/dev/null
  done
}

wipe_hosts() { local i; for ((i = 1; i <= hosts; i++)); do rm -rf "$work/host$i/root/etc"; done; }

# median_s CASE JOBS [OPTION...]: median wall time of RUNS runs of deploy --all --jobs JOBS,
# seconds.
median_s() {
  local case=$1 jobs=$2 r start end times=()
  shift 2
  for ((r = 0; r < runs; r++)); do
    [ "$case" = send ] && wipe_hosts
    start=$(date +%s%N)
    "$bin" --dir "$work/pki" deploy --all --jobs "$jobs" "${ssh_opts[@]}" "$@" >/dev/null
    end=$(date +%s%N)
    times+=($(((end - start) / 1000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v n="$runs" '{a[NR]=$1} END {printf "%.2f", a[int((n+1)/2)]/1e6}'
}

report() {
  local case=$1 one many label
  for label in shared per-call; do
    if [ "$label" = shared ]; then
      one=$(median_s "$case" 1)
      many=$(median_s "$case" "$hosts")
    else
      one=$(median_s "$case" 1 --ssh-option ControlMaster=no)
      many=$(median_s "$case" "$hosts" --ssh-option ControlMaster=no)
    fi
    printf '  %-8s %-9s %2d hosts   --jobs 1 %7.2f s   --jobs %d %7.2f s   %.1fx\n' \
      "$case" "$label" "$hosts" "$one" "$hosts" "$many" "$(echo "$one / $many" | bc -l)"
  done
}

echo "deploy --all to $hosts sshd hosts on 127.0.0.1, $(nproc) cores, median of $runs runs:"
echo "  (binary sent: $(du -h "$bin" | cut -f 1))"
for ((i = 1; i <= hosts; i++)); do start_sshd "$i" "${ports[i-1]}" /usr/bin:/bin:/usr/sbin:/sbin; done
sleep 1
setup_pki
first_deploy
report send
# The same hosts, now with this binary on their PATH and the files in place.
for p in "${pids[@]}"; do kill "$p"; done
pids=()
sleep 0.5
for ((i = 1; i <= hosts; i++)); do start_sshd "$i" "${ports[i-1]}" "$work/bin:/usr/bin:/bin:/usr/sbin:/sbin"; done
sleep 1
"$bin" --dir "$work/pki" deploy --all "${ssh_opts[@]}" >/dev/null
report current
