#!/bin/sh
# Installs clawos-security's runtime side on a Kubernetes node by hand, from
# a checkout with `make build` done: clawos-node install (package
# internal/nodeinstall), which the installer DaemonSet (deploy/installer.yaml)
# runs itself. For example, with containerd's handler, a restart when its
# configuration changed, a health check through the wrapper:
#   deploy/install-node.sh --whitelists DIR --containerd --restart-containerd
# Flags: clawos-node install --help.
set -eu
from=$(cd "$(dirname "$0")/.." && pwd)
exec "$from/bin/clawos-node" install --from "$from" "$@"
