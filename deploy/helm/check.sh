#!/usr/bin/env bash
# Checks the chart (make helm): helm lint, then helm template with the
# default values and with ci/full-values.yaml (every option on), each
# rendering decoded strictly by chartsync check, and the values the chart
# must refuse.
#
# usage: deploy/helm/check.sh HELM
set -euo pipefail
helm=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
chart=$here/sluice
full=$chart/ci/full-values.yaml
cd "$root"
go build -o "${TMPDIR:-/tmp}/sluice-chartsync" ./deploy/helm/chartsync
check="${TMPDIR:-/tmp}/sluice-chartsync check"

# The dashboard is shipped once deploy/grafana/sluice.json exists (make
# generate copies it into the chart).
dashboard=()
if [ -f "$chart/dashboards/sluice.json" ]; then
  dashboard=(--set dashboard.enabled=true)
fi

"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" -f "$full" "${dashboard[@]}"

echo "== helm template: default values"
"$helm" template sluice "$chart" --namespace sluice-system | $check
echo "== helm template: ci/full-values.yaml ${dashboard[*]}"
"$helm" template platform "$chart" --namespace platform -f "$full" "${dashboard[@]}" | $check

# refuse WHY ARGS...: helm template must fail, saying WHY.
refuse() {
  local why=$1 out
  shift
  if out=$("$helm" template sluice "$chart" --namespace sluice-system "$@" 2>&1); then
    echo "helm template $* rendered; it must fail with: $why" >&2
    exit 1
  fi
  if ! grep -qF -- "$why" <<<"$out"; then
    echo "helm template $* failed without saying \"$why\":" >&2
    echo "$out" >&2
    exit 1
  fi
}
echo "== values the chart refuses"
refuse 'goes alone' --set 'rbac.templateSecrets.namespaces={*,team-a}'
refuse 'needs bearerTokenKey' --set prometheus.authentication.secretName=prom
refuse 'needs metrics.service.enabled' --set serviceMonitor.enabled=true --set metrics.service.enabled=false
refuse 'serviceAccount.name is required' --set serviceAccount.create=false
refuse 'must be a DNS label' --set 'shards[0].name=Shard_1'
refuse 'is there twice' --set 'shards[0].name=a' --set 'shards[1].name=a'
refuse 'shards[].name is required' --set 'shards[0].other=a'
if [ ${#dashboard[@]} -eq 0 ]; then
  refuse 'holds no dashboards/sluice.json' --set dashboard.enabled=true
fi
echo "== notifications.enabled: the flag and get on the notifications' Secrets"
out=$("$helm" template sluice "$chart" --namespace sluice-system --set notifications.enabled=true)
for want in '- --notifications' 'sluice-notifications-secret' 'sluice-notifications-cm'; do
  if ! grep -qF -- "$want" <<<"$out"; then
    echo "notifications.enabled renders no $want" >&2
    exit 1
  fi
done
if "$helm" template sluice "$chart" --namespace sluice-system | grep -qF -- '- --notifications'; then
  echo "notifications are on by default" >&2
  exit 1
fi
echo "== rbac.templateSecrets.namespaces empty: no access to templates' Secrets"
for empty in 'rbac.templateSecrets.namespaces={}' 'rbac.templateSecrets.namespaces=null'; do
  out=$("$helm" template sluice "$chart" --namespace sluice-system --set "$empty")
  if grep -q template-secrets <<<"$out"; then
    echo "--set $empty still grants templates' Secrets" >&2
    exit 1
  fi
done
echo "chart OK"
