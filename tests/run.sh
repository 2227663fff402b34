#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs (Debian packages for SLURM
# and Son of Grid Engine; nox and uv from PyPI into .venv-nox, by tools/nox.py), starts both clusters,
# then builds the packages and runs every nox test session on the wheels.
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

step "putting Python 3.9 to 3.13 on PATH for nox"
# nox looks for python3.9 ... python3.13 on PATH. Link the pyenv interpreters (if any) into a
# folder of their own, so that `python3` itself stays the system's.
pythons=.nox/pythons
mkdir -p "$pythons"
for version in 3.9 3.10 3.11 3.12 3.13; do
  found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$found" ]; then
    ln -sf "$found" "$pythons/python$version"
  elif ! command -v "python$version" >/dev/null; then
    echo "tests/run.sh: python$version is not installed (nox tests crew-core and crew-local on 3.9 to 3.13)" >&2
    exit 1
  fi
done
export PATH="$PWD/$pythons:$PATH"

step "fetching CPython's own test_concurrent_futures (Debian's libpython3.11-testsuite, extracted, not installed)"
python3 tests/_cpython_tests.py

step "running the test sessions (nox and uv in .venv-nox, made by tools/nox.py)"
status=0
python3 tools/nox.py --no-color -s build lint tests docs bench_quick "$@" || status=$?

step "stopping the clusters"
bash tests/clusters/sge/stop.sh || true
bash tests/clusters/slurm/stop.sh || true
step "done (exit $status)"
exit $status
