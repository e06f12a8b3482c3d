#!/usr/bin/env bash
# Validates deploy/k8s/ offline against the official schemas of one Kubernetes release, strictly
# (an unknown field is an error), with PyPI's kubernetes-validate (pinned in
# scripts/k8s-check/requirements.txt, installed into a virtualenv under target/).
#
#   scripts/k8s-check.sh            # K8S_VERSION=1.34.0 by default
#
# The validation runs without network where `unshare -n` works (root), proving it needs none.
# The security settings (probes, non-root, read-only root, Secrets as files, NetworkPolicy) are
# checked by the render test: cargo test -p e2e --test k8s.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=${K8S_VERSION:-1.34.0}
venv=${CARGO_TARGET_DIR:-target}/k8s-check-venv
req=scripts/k8s-check/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi
# Every manifest kustomization.yaml applies, and the Secrets' example (applied by hand).
files=()
while read -r f; do files+=("deploy/k8s/$f"); done < <(sed -nE 's/^  - ([a-z0-9.-]+\.yaml)$/\1/p' deploy/k8s/kustomization.yaml)
files+=(deploy/k8s/secrets.example.yaml)
[ ${#files[@]} -gt 1 ] || { echo "no manifests listed in deploy/k8s/kustomization.yaml" >&2; exit 1; }
offline=()
if unshare -n true 2>/dev/null; then offline=(unshare -n); fi
# --quiet prints failures only; a missing schema (an unknown kind) is a warning: fail on it too.
out=$("${offline[@]}" "$venv/bin/kubernetes-validate" -k "$K8S_VERSION" --strict --quiet "${files[@]}" 2>&1) || {
  echo "$out" >&2
  exit 1
}
if [ -n "$out" ]; then echo "$out" >&2; exit 1; fi
echo "deploy/k8s: ${#files[@]} files valid against Kubernetes $K8S_VERSION (strict, $([ ${#offline[@]} -gt 0 ] && echo 'no network' || echo 'offline schemas'))"
