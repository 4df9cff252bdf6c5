#!/usr/bin/env bash
# Render a gan-probe report in a real browser (headless Chromium, Debian's `chromium` package) and save a
# screenshot, to check that the page is self-contained and shows its figures.
#
#   benchmarks/report_screenshot.sh RUN_DIR [OUT.png] [HEIGHT]
#
# Writes RUN_DIR/report.html if it is missing (gan-probe report RUN_DIR), then a 1200 px wide screenshot
# (default /tmp/report.png, 3000 px tall). Network access is cut for the browser (a proxy that does not
# exist), so a page that needed the network would show broken images.
set -euo pipefail
RUN_DIR=${1:?usage: $0 RUN_DIR [OUT.png] [HEIGHT]}
OUT=${2:-/tmp/report.png}
HEIGHT=${3:-3000}
PYTHON=${PYTHON:-python}
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$BROWSER" ]; then
  echo "needs Chromium: apt-get install -y chromium" >&2
  exit 1
fi
if [ ! -f "$RUN_DIR/report.html" ]; then
  "$PYTHON" -m gan_probe report "$RUN_DIR"
fi
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
"$BROWSER" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --user-data-dir="$PROFILE" --proxy-server=127.0.0.1:9 \
  --hide-scrollbars --screenshot="$OUT" --window-size=1200,"$HEIGHT" \
  "file://$(cd "$(dirname "$RUN_DIR/report.html")" && pwd)/report.html" 2>/dev/null
"$PYTHON" - "$OUT" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("L")
lo, hi = im.getextrema()
colours = len(im.getcolors(1 << 16) or [])
print(f"screenshot {sys.argv[1]}: {im.size[0]}x{im.size[1]}, grey levels {lo}..{hi}, {colours} distinct")
sys.exit(0 if hi - lo > 50 and colours > 20 else "the screenshot is blank")
PY
