#!/usr/bin/env bash
# Install lambench and every model family it runs offline, on a fresh machine.
# Torch goes first, pinned, so that no later install drags in a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -c constraints.txt -e '.[all]'
python -m pip list 2>/dev/null | grep -E '^torch ' 
