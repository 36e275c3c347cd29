#!/usr/bin/env bash
# `make previews`: render every email and patient page in every language to var/previews/
# (the services' own templates), then, when Chromium is installed, screenshot each HTML preview
# at a phone's width (375 px) and a laptop's (1024 px) into var/previews/shots/.
# An argument narrows the screenshots to files whose name contains it: `scripts/previews.sh -fr`.
set -euo pipefail
cd "$(dirname "$0")/.."

out=var/previews
rm -rf "$out"
"${CARGO:-cargo}" run -q -p slotcast-previews -- "$out"

chromium=""
for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null; then chromium=$candidate; break; fi
done
if [[ -z "$chromium" ]]; then
    echo "No Chromium found: previews rendered, not screenshotted. Open $out/index.html."
    exit 0
fi

mkdir -p "$out/shots"
count=0
for page in "$out"/*.html; do
    name=$(basename "$page" .html)
    [[ "$name" == index ]] && continue
    [[ -n "${1:-}" && "$name" != *"$1"* ]] && continue
    # Tall windows: a screenshot is only the window, and a phone scrolls.
    for size in 375,1600 1024,1000; do
        "$chromium" --headless --no-sandbox --hide-scrollbars --disable-gpu \
            --screenshot="$out/shots/$name-${size%%,*}.png" --window-size="$size" \
            "file://$PWD/$page" >/dev/null 2>&1
        count=$((count + 1))
    done
done
echo "$count screenshots in $out/shots/"
