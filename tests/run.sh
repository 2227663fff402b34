#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs (Debian packages for SLURM
# and Son of Grid Engine, nox from PyPI), starts both clusters, then runs every nox test session.
# Usage: bash tests/run.sh [nox options...]
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
step() { echo "=== [tests/run.sh +$((SECONDS - T0))s] $*"; }

step "installing iproute2 and nftables (tests/network)"
command -v nft >/dev/null && command -v ip >/dev/null || {
  apt-get install -y -qq --no-install-recommends iproute2 nftables >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends iproute2 nftables >/dev/null; }
}

step "starting SLURM"
bash tests/clusters/slurm/start.sh
step "starting Son of Grid Engine"
bash tests/clusters/sge/start.sh
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default

step "installing openssh-server (crew-ssh's tests start their own sshd on 127.0.0.1)"
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null; }
fi

step "installing nox and uv"
python3 -m pip install --quiet --disable-pip-version-check nox uv

step "running the test sessions"
status=0
python3 -m nox --no-color -s lint tests docs bench_quick "$@" || status=$?

step "stopping the clusters"
bash tests/clusters/sge/stop.sh || true
bash tests/clusters/slurm/stop.sh || true
step "done (exit $status)"
exit $status
