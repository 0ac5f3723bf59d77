#!/usr/bin/env bash
# Install lambench, every model family it runs offline, and the reference codes its tests use.
# Torch goes first, pinned, so that no later install drags in a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pw.x >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    # OpenBLAS makes pw.x ~2× faster on slabs than the reference BLAS, and is what the shipped QE sets
    # were labelled with (their provenance lists the numerical libraries).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq quantum-espresso quantum-espresso-data \
      libopenblas0-serial >/dev/null
  else
    echo "note: Quantum ESPRESSO (pw.x) is not installed; 'lambench data build' of periodic sets and" \
         "some tests need it: apt-get install quantum-espresso quantum-espresso-data" >&2
  fi
fi
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -c constraints.txt -e '.[all]'
python -m pip list 2>/dev/null | grep -E '^torch '
