#!/usr/bin/env bash
# Builds the binaries the e2e tests and the playground run, from the Go module
# proxy, into $SLUICE_CACHE/bin (default ~/.cache/sluice/bin). Each binary is
# rebuilt only when the go.sum of its recipe module (or its pinned version)
# changes, so a warm cache costs nothing.
#
# usage: build.sh [tool...]   (default: all)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${SLUICE_CACHE:-$HOME/.cache/sluice}
bin=$cache/bin
mkdir -p "$bin"

CONTROLLER_GEN_VERSION=v0.23.0
HELM_VERSION=v4.3.1

# stamp KEY: prints the identity of what KEY would be built from.
stamp() {
  case $1 in
    controller-gen) echo "$CONTROLLER_GEN_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    *) sha256sum "$here/$(module_of "$1")/go.sum" | cut -c1-16 ;;
  esac
}

module_of() {
  case $1 in
    kube-apiserver|kube-controller-manager|kube-scheduler) echo kubernetes ;;
    *) echo "$1" ;;
  esac
}

package_of() {
  case $1 in
    kube-*) echo "k8s.io/kubernetes/cmd/$1" ;;
    etcd) echo go.etcd.io/etcd/server/v3 ;;
    kwok) echo sigs.k8s.io/kwok/cmd/kwok ;;
    prometheus) echo github.com/prometheus/prometheus/cmd/prometheus ;;
  esac
}

build() {
  local tool=$1 want have=""
  want=$(stamp "$tool")
  [ -f "$bin/.$tool.stamp" ] && have=$(cat "$bin/.$tool.stamp")
  if [ -x "$bin/$tool" ] && [ "$want" = "$have" ]; then
    return 0
  fi
  echo ">> building $tool ($want) into $bin (first build only; this can take minutes)"
  local start=$SECONDS
  case $tool in
    controller-gen) GOBIN=$bin go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION" ;;
    helm) GOBIN=$bin go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" ;;
    *) (cd "$here/$(module_of "$tool")" && go build -trimpath -ldflags='-s -w' -o "$bin/$tool.tmp" "$(package_of "$tool")") \
         && mv "$bin/$tool.tmp" "$bin/$tool" ;;
  esac
  echo "$want" > "$bin/.$tool.stamp"
  echo ">> built $tool in $((SECONDS - start))s"
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(controller-gen etcd kube-apiserver kube-controller-manager kube-scheduler kwok prometheus helm)
for t in "${tools[@]}"; do build "$t"; done
