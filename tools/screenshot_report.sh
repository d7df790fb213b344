#!/usr/bin/env bash
# Render an `ltk report` HTML page in headless Chromium and save a screenshot, to check that the page is
# self-contained (no network) and readable.
#
#   ltk report runs/ny-keep runs/ny-extend --out reports/ny
#   bash tools/screenshot_report.sh reports/ny/report.html docs/report-screenshot.png [WIDTH HEIGHT]
#
# Needs Chromium (Debian: apt-get install -y chromium). tests/integration/test_report.py runs this script
# (tools/test.sh installs Chromium when it runs as root, as in CI; elsewhere the test skips, naming this
# script), then loads the page again to check that each plot is drawn and that no network request is made.
set -euo pipefail
html=${1:?usage: screenshot_report.sh REPORT.html OUT.png [WIDTH HEIGHT]}
out=${2:?usage: screenshot_report.sh REPORT.html OUT.png [WIDTH HEIGHT]}
width=${3:-1280}
height=${4:-2400}
chromium_bin=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [[ -z "$chromium_bin" ]]; then
  echo "error: Chromium not found; install it (apt-get install -y chromium) or set CHROMIUM=/path" >&2
  exit 1
fi
abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# --no-sandbox: containers and CI often run as root, where Chromium's sandbox refuses to start.
"$chromium_bin" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --window-size="${width},${height}" --screenshot="$abs_out" "file://$abs_html" >/dev/null 2>&1
test -s "$abs_out" || { echo "error: no screenshot written to $abs_out" >&2; exit 1; }
echo "wrote $abs_out"
