#!/usr/bin/env bash
# Installs the real Prometheus, promtool and Alertmanager that the tests start, from
# Debian packages, when their binaries are missing. Needs root for apt-get; otherwise
# says exactly what to install.
set -euo pipefail

missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || missing+=(prometheus-alertmanager)
# The container image test (pytest -m image) builds and runs the image with podman; the
# base image is made with mmdebstrap from the machine's own Debian mirror (no registry).
# catatonit is podman's --init (a PID 1 that forwards SIGTERM).
for tool in podman buildah runc mmdebstrap; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -x /usr/libexec/podman/catatonit ] || missing+=(catatonit)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing: ${missing[*]}. Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} from Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The packages try to start their services; there is no init system in containers, and
# the tests start the binaries themselves, so a failing service start is not an error.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  dpkg --configure -a >/dev/null 2>&1 || true
  command -v prometheus >/dev/null || { echo "apt-get install ${missing[*]} failed" >&2; exit 1; }
}
