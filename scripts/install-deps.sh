#!/usr/bin/env bash
# Installs what the lab and its tests need on a fresh Debian/Ubuntu machine, and nothing
# that is already there: mmdebstrap (to build images with no registry), iproute2, BIRD,
# FRR and GoBGP (for the speaker's interop tests), a Docker engine (started by hand where
# there is no systemd), check-jsonschema in a venv under .lab/ (to check topology
# files against containerlab's schema), and a registry unpacked under .lab/ (to push
# the lab's images to in the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v python3 >/dev/null || need+=(python3 python3-venv)
if ! command -v docker >/dev/null && ! command -v dockerd >/dev/null; then
  need+=(docker.io)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Routing daemons on the host, for the speaker's interop tests (they run bird, FRR and
# gobgpd in network namespaces). policy-rc.d keeps their packages from starting a
# service on the host.
daemons=()
command -v bird >/dev/null || daemons+=(bird2)
[ -x /usr/lib/frr/bgpd ] || daemons+=(frr)
command -v gobgpd >/dev/null || daemons+=(gobgpd)
if [ ${#daemons[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${daemons[*]} (no service started)"
  $SUDO apt-get update -qq
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get install -y -qq "${daemons[@]}" >/dev/null || { $SUDO rm -f /usr/sbin/policy-rc.d; exit 1; }
  $SUDO rm -f /usr/sbin/policy-rc.d
fi

# A Docker engine: use the running one; start one where none runs and nothing else
# (systemd) will.
if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null && systemctl list-units >/dev/null 2>&1; then
    $SUDO systemctl start docker
  else
    echo "install-deps: starting dockerd (log: /var/log/dockerd.log)"
    $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "install-deps: the Docker engine did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

# check-jsonschema, in a venv of the project's own.
if [ ! -x .lab/venv/bin/check-jsonschema ]; then
  python3 -m venv .lab/venv
  .lab/venv/bin/pip install --quiet --disable-pip-version-check check-jsonschema
fi

# A container registry (Debian's docker-registry, the CNCF distribution) unpacked under
# .lab/registry and never installed: its package would start a service on :5000. The
# end-to-end tests push the lab's images to one they start on a free port.
if [ ! -x .lab/registry/usr/bin/docker-registry ]; then
  echo "install-deps: unpacking docker-registry into .lab/registry"
  rm -rf .lab/registry.tmp && mkdir -p .lab/registry.tmp
  (cd .lab/registry.tmp && apt-get download -qq docker-registry 2>/dev/null) || {
    $SUDO apt-get update -qq
    (cd .lab/registry.tmp && apt-get download -qq docker-registry)
  }
  dpkg-deb -x .lab/registry.tmp/docker-registry_*.deb .lab/registry.tmp/root
  rm -rf .lab/registry && mv .lab/registry.tmp/root .lab/registry && rm -rf .lab/registry.tmp
fi
