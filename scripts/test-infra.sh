#!/usr/bin/env bash
# Brings up what Spool's integration tests need on a Debian machine where we
# are root: a private sshd on 127.0.0.1 (key auth, non-root user), a Docker
# engine with a tiny local busybox image (no image registry is reachable),
# bubblewrap, the read-only sandbox of the local runner and of the SSH host,
# Chromium, the browser the web view's tests drive, Prometheus (started by its test), and the third-party ACP and
# MCP clients the tests run (scripts/test-tools.mjs).
# Usage: scripts/test-infra.sh up|down   (state under $SPOOL_INFRA_DIR)
# `up` prints SPOOL_TEST_* variables for the tests on stdout.
set -euo pipefail
D=${SPOOL_INFRA_DIR:-/tmp/spool-infra}
cmd=${1:-up}

down() {
  for p in "$D/ssh/sshd.pid" "$D/docker/dockerd.pid"; do
    [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
  done
}

if [ "$cmd" = down ]; then down; exit 0; fi

# One `up` at a time on a machine: two CI runs started together each found PostgreSQL not yet running and both
# started it ("pg_ctl: another server might be running … could not start server", the second run failed before a
# test). The second now waits, then finds each service up. flock -o: the daemons started here do not hold the lock.
if [ -z "${SPOOL_INFRA_LOCKED:-}" ]; then
  mkdir -p "$D"
  SPOOL_INFRA_LOCKED=1 exec flock -o "$D/up.lock" bash "$0" "$@"
fi

need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
# slirp4netns: a workspace-write command's network namespace of its own (src/runners/sandbox/network.ts)
command -v slirp4netns >/dev/null 2>&1 || need+=(slirp4netns)
[ -x /usr/bin/chromium ] || need+=(chromium)
# The browser tests run in Chromium's headless shell when it is there (test/helpers/browser.ts): half the CPU.
[ -x /usr/bin/chromium-headless-shell ] || need+=(chromium-headless-shell)
# zsh: test/cli/completion runs the zsh completion script in it.
command -v zsh >/dev/null 2>&1 || need+=(zsh)
# Prometheus, which test/ops/prometheus.test.ts starts itself on a loopback port (the package's service stays off).
command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || need+=(prometheus)
# promtool (README's scrape config) comes with prometheus; systemd-analyze (examples/spool.service) with systemd.
command -v promtool >/dev/null 2>&1 || [ -x /usr/bin/promtool ] || need+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || [ -x /usr/bin/systemd-analyze ] || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian starts the prometheus service it installs (on :9090, where systemd runs): the tests want their own.
if [ -d /run/systemd/system ] && systemctl is-active --quiet prometheus 2>/dev/null; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi

# --- sshd on 127.0.0.1:2222, key auth, a non-root user (OpenSSH ignores
# channel signals for root sessions, so signal tests need a normal user).
S=$D/ssh; mkdir -p "$S" /run/sshd
[ -f "$S/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
[ -f "$S/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$S/client_key"
cp "$S/client_key.pub" "$S/authorized_keys"; chmod 644 "$S/authorized_keys"
id spoolrunner >/dev/null 2>&1 || useradd -m -s /bin/bash spoolrunner
usermod -p '*' spoolrunner   # unlocked without a password, else sshd refuses it with PAM off
cat > "$S/sshd_config" <<CFG
Port ${SPOOL_SSH_PORT:-2222}
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
CFG
if ! { [ -f "$S/sshd.pid" ] && kill -0 "$(cat "$S/sshd.pid")" 2>/dev/null; }; then
  /usr/sbin/sshd -t -f "$S/sshd_config"
  /usr/sbin/sshd -f "$S/sshd_config" -E "$S/sshd.log"
fi

# --- dockerd without iptables or a bridge; containers use --network none/host. In a session of its own (as sshd
# and PostgreSQL put themselves): the shell job that ran `up` may be stopped as a group when it ends, and dockerd
# would go with it.
K=$D/docker; mkdir -p "$K/data" "$K/exec"
if ! docker version >/dev/null 2>&1; then
  setsid nohup dockerd --data-root "$K/data" --exec-root "$K/exec" --pidfile "$K/dockerd.pid" \
    -H unix:///var/run/docker.sock --storage-driver overlay2 \
    --iptables=false --ip6tables=false --bridge=none --ip-masq=false \
    >"$K/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
fi
docker version >/dev/null

# --- bubblewrap must build its read-only sandbox here, as root and as the SSH
# user (unprivileged user namespaces); the tests fail under SPOOL_TEST_INFRA=required otherwise.
# The system directories, never / (the runner's probe binds the same): binding / takes every mount under it, Docker's
# overlays included, and one Docker makes or removes meanwhile fails the sandbox.
bwrap_probe=(bwrap --ro-bind-try /usr /usr --ro-bind-try /bin /bin --ro-bind-try /sbin /sbin --ro-bind-try /lib /lib --ro-bind-try /lib64 /lib64 --ro-bind-try /etc /etc --dev /dev --remount-ro /dev --proc /proc --tmpfs /run --remount-ro /run --remount-ro / --unshare-pid --unshare-ipc --unshare-net --unshare-uts --cap-drop ALL --chdir / -- /bin/sh -c '[ ! -w / ]')
"${bwrap_probe[@]}" || echo "warning: bubblewrap cannot build the read-only sandbox as root here" >&2
su -s /bin/sh spoolrunner -c "$(printf '%q ' "${bwrap_probe[@]}")" || echo "warning: bubblewrap cannot build the read-only sandbox as spoolrunner here" >&2

# --- a tiny local image (no registry here): busybox imported as spool-test/busybox
if ! docker image inspect spool-test/busybox >/dev/null 2>&1; then
  R=$D/rootfs; rm -rf "$R"; mkdir -p "$R/bin" "$R/tmp" "$R/etc" "$R/proc" "$R/sys" "$R/dev"
  cp /bin/busybox "$R/bin/"
  for a in $("$R/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
  tar -C "$R" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - spool-test/busybox:latest >/dev/null
fi

# --- a private PostgreSQL cluster on 127.0.0.1 (the store tests' second dialect)
pg_env=$(bash "$(dirname "$0")/test-postgres.sh")

# --- third-party clients the tests drive (acpx, the MCP conformance suite and Inspector, a Node 22), from the npm
# registry into the test cache, so the suite's own time does not include downloading them (it would, and still
# passes, without this step). A failure here is reported on stderr; the tests then try again and say why.
node "$(dirname "$0")/test-tools.mjs" || echo "warning: could not install the tests' third-party tools" >&2

cat <<OUT
SPOOL_TEST_SSH_HOST=127.0.0.1
SPOOL_TEST_SSH_PORT=${SPOOL_SSH_PORT:-2222}
SPOOL_TEST_SSH_USER=spoolrunner
SPOOL_TEST_SSH_KEY=$S/client_key
SPOOL_TEST_SSH_HOST_KEY=$S/host_key.pub
SPOOL_TEST_DOCKER_IMAGE=spool-test/busybox:latest
$pg_env
OUT
