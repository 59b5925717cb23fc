#!/usr/bin/env bash
# Renders `shredkv report` in headless Chromium (Debian's chromium) and
# fails if the page logs anything to the console (a script error, a
# Content-Security-Policy violation, a failed load) or its script did not
# run. Usage: report_render.sh SHREDKV_BINARY WORK_DIR. Exit 77 (ctest:
# skipped) without /usr/bin/chromium; scripts/test.sh installs it.
set -euo pipefail
shredkv="$(realpath "$1")"
work="$2"
chromium="${SHREDKV_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
  echo "report_render: no $chromium (scripts/setup-deps.sh --browser installs it): skipped"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export SHREDKV_KEY_FILE="$work/root.key"
"$shredkv" keygen --out root.key > /dev/null
"$shredkv" --db db init --retention event:page_view=30d,analytics=365d > /dev/null
"$shredkv" sample --people 60 > sample.ndjson
"$shredkv" -q --db db ingest sample.ndjson > /dev/null
# Erasures at every level: purged, cryptographic, logical.
emails=$(grep -o '"op":"profile","ids":{"email":"[^"]*"' sample.ndjson | sed 's/.*"email":"//; s/"$//' | head -6)
n=0
for email in $emails; do
  "$shredkv" --db db erase --id "email:$email" > /dev/null
  n=$((n + 1))
  if [[ $n == 2 ]]; then "$shredkv" --db db rotate-keys > /dev/null; "$shredkv" --db db purge > /dev/null; fi
  if [[ $n == 4 ]]; then "$shredkv" --db db rotate-keys > /dev/null; fi
done
"$shredkv" --db db report --out report.html > /dev/null
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# The flags keep Chromium off the network (the machine has none) and out of
# the user's profile.
status=0
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
  --enable-logging=stderr --v=0 --dump-dom "file://$work/report.html" > dom.html 2> chromium.log || status=$?
if [[ $status != 0 ]]; then
  echo "report_render: chromium exited with $status; its log:"
  cat chromium.log
  exit 1
fi
if grep -n ':CONSOLE' chromium.log; then
  echo "report_render: the page logged to the console (above)"
  status=1
fi
if ! grep -q 'data-ready="1"' dom.html; then
  echo "report_render: the page's script did not run (no data-ready=\"1\" in the rendered DOM)"
  status=1
fi
for want in '6 erasure requests: 2 purged, 2 cryptographic, 2 logical' '<svg' 'class="ok">intact<'; do
  if ! grep -qF "$want" dom.html; then
    echo "report_render: the rendered page lacks: $want"
    status=1
  fi
done
if [[ $status == 0 ]]; then echo "report_render: rendered in $("$chromium" --version 2>/dev/null | head -1), no console messages"; fi
exit $status
