#!/usr/bin/env bash
# A tour of shredkv through its command-line tool (build/bin/shredkv):
# installs what is missing, builds the tool, then in a throwaway directory
# creates a root key and a store, ingests a generated sample of a few
# thousand people, exports one of them, erases that person (suppressing the
# identifiers and unlinking the analytics rows), shows that the person is
# gone while the anonymous analytics rows remain, and takes the erasure to
# "purged" with purge and rotate-keys, restores a backup taken before the
# erasure (the person stays erased) and verifies the store.
#
#   scripts/demo-cli.sh            # 3000 people
#   DEMO_PEOPLE=20000 scripts/demo-cli.sh
#
# Needs nothing but the Debian packages of scripts/setup-deps.sh: no python,
# no jq. Extra CMake arguments may be given in SHREDKV_CMAKE_ARGS, another
# build directory (default build) in SHREDKV_BUILD_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-deps.sh
BUILD=${SHREDKV_BUILD_DIR:-build}
# shellcheck disable=SC2086  # SHREDKV_CMAKE_ARGS is a word list on purpose
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${SHREDKV_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" --target shredkv_cli
BIN=$(cd "$BUILD" && pwd)/bin/shredkv
PEOPLE=${DEMO_PEOPLE:-3000}

# The HTML report outlives the demo's scratch directory.
REPORT=${SHREDKV_DEMO_REPORT:-$(cd "$BUILD" && pwd)/shredkv-report.html}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shredkv-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

if [[ -t 1 ]]; then
  BOLD=$'\033[1m' DIM=$'\033[2m' CYAN=$'\033[36m' RESET=$'\033[0m'
else
  BOLD='' DIM='' CYAN='' RESET=''
fi
section() { printf '\n%s━━ %s%s\n' "$BOLD" "$*" "$RESET"; }
note() { printf '%s%s%s\n' "$DIM" "$*" "$RESET"; }
# Shows the command, then runs it (the root key comes from $SHREDKV_KEY_FILE).
run() {
  printf '%s$ shredkv %s%s\n' "$CYAN" "$*" "$RESET"
  "$BIN" "$@"
}
# Runs a command that is expected to fail and shows its exit code.
run_status() {
  local code=0
  printf '%s$ shredkv %s%s\n' "$CYAN" "$*" "$RESET"
  "$BIN" "$@" || code=$?
  printf '%sexit code %d%s\n' "$BOLD" "$code" "$RESET"
  return 0
}
# Extracts the string value of "key" from one line of JSON (no jq needed).
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }

section "A root key and an empty store"
note "The root key wraps the per-person keys; it is never written into the store."
run keygen --out root.key
export SHREDKV_KEY_FILE=$WORK/root.key
run --db db init

section "A generated sample of $PEOPLE people"
note "NDJSON, one operation a line: profiles, events (with the non-personal fields for analytics), order records."
printf '%s$ shredkv sample --people %s > sample.ndjson%s\n' "$CYAN" "$PEOPLE" "$RESET"
"$BIN" sample --people "$PEOPLE" > sample.ndjson
note "$(wc -l < sample.ndjson) lines, $(du -h sample.ndjson | cut -f1); the first three:"
head -n 3 sample.ndjson

section "Ingest"
run --db db ingest sample.ndjson
run --db db --pretty stats

# The person of the demo: the 42nd of the sample.
EMAIL=$(grep -o '"email":"[^"]*\.42@example\.org"' sample.ndjson | head -n 1 | cut -d'"' -f4)
PROFILE_LINE=$(grep -m 1 "\"op\":\"profile\".*\"email\":\"$EMAIL\"" sample.ndjson)

section "Export everything held on $EMAIL (GDPR Art. 15/20)"
run --db db --pretty export --id "email:$EMAIL"
PERSON_LINE=$("$BIN" --db db export --id "email:$EMAIL" --format ndjson | grep '"type":"person"')
PERSON_ID=$(json_field person_id <<<"$PERSON_LINE")
ANON_ID=$(json_field anon_id <<<"$PERSON_LINE")

section "Processing reads need a purpose"
run --db db get --id "email:$EMAIL" --purpose support
note "marketing needs consent, which this person has not given (5 = restricted):"
run_status --db db get --id "email:$EMAIL" --purpose marketing

section "Rectify (GDPR Art. 16): one commit, one notice for the recipients (Art. 19)"
printf '%s$ shredkv --db db rectify --id email:%s --set '"'"'{"city":"Hamburg"}'"'"'%s\n' "$CYAN" "$EMAIL" "$RESET"
"$BIN" --db db rectify --id "email:$EMAIL" --set '{"city":"Hamburg"}'
printf '%s$ shredkv --db db feed | grep rectification%s\n' "$CYAN" "$RESET"
"$BIN" --db db feed | grep '"rectification"'

section "Analytics rows carry only an anonymous ID"
printf '%s$ shredkv --db db analytics > analytics-before.ndjson%s\n' "$CYAN" "$RESET"
"$BIN" --db db analytics > analytics-before.ndjson
grep "$ANON_ID" analytics-before.ndjson > mine.ndjson || true
note "$(wc -l < analytics-before.ndjson) rows; $(wc -l < mine.ndjson) of them under this person's anonymous ID $ANON_ID:"
cat mine.ndjson

section "A backup, taken while the person is still there"
run --db db backup backup-before

section "Erase $EMAIL: crypto-shredding, identifiers suppressed, analytics unlinked"
run --db db --pretty erase --id "email:$EMAIL" --suppress --analytics unlink --request-id demo-erasure-1

section "The person is gone"
note "By person ID (4 = erased):"
run_status --db db get --id "person_id:$PERSON_ID" --purpose support
note "By email, now on the suppression list (6 = suppressed):"
run_status --db db get --id "email:$EMAIL" --purpose support
note "Re-ingesting the person's profile line is refused and counted as suppressed:"
printf '%s$ grep -m 1 '"'"'"op":"profile".*"%s"'"'"' sample.ndjson | shredkv --db db ingest%s\n' \
  "$CYAN" "$EMAIL" "$RESET"
"$BIN" --db db ingest <<<"$PROFILE_LINE"

section "The analytics rows remain, unlinked"
printf '%s$ shredkv --db db analytics > analytics-after.ndjson%s\n' "$CYAN" "$RESET"
"$BIN" --db db analytics > analytics-after.ndjson
note "$(wc -l < analytics-after.ndjson) rows (before: $(wc -l < analytics-before.ndjson));" \
  "under the old anonymous ID: $(grep -c "$ANON_ID" analytics-after.ndjson || true)."
note "Each of the person's rows now has an ID of its own and its time coarsened to the day:"
while IFS= read -r row; do
  name=$(json_field name <<<"$row")
  ts=$(grep -o '"ts":[0-9]*' <<<"$row" | cut -d: -f2)
  grep "\"name\":\"$name\",\"ts\":$((ts / 86400000 * 86400000))," analytics-after.ndjson || true
done < mine.ndjson | sort -u

section "From logical to purged"
run --db db erasure-status --request-id demo-erasure-1
note "purge deletes the erased person's ciphertext rows:"
run --db db purge
note "rotate-keys destroys the epoch key that wrapped the person's key: now no byte can decrypt them."
run --db db rotate-keys
run --db db --pretty erasure-status --request-id demo-erasure-1

section "Restoring that older backup does not bring the person back"
note "The live store's erasure log (fences and suppressions; no personal data) goes with every restore:"
run --db db erasure-log --out erasures.ndjson
run --db restored restore backup-before --erasure-log erasures.ndjson
note "In the restored store the person is erased again, under the same request id (4 = erased):"
run_status --db restored get --id "person_id:$PERSON_ID" --purpose support

section "Verify every record, index, checksum and the audit chain"
run --db db --pretty verify

section "The store at a glance: stats for monitoring, a report for people"
printf '%s$ shredkv --db db stats --format prometheus | grep -E "^shredkv_(people|erased|pending_purge|erasures_since_rotation) "%s\n' "$CYAN" "$RESET"
"$BIN" --db db stats --format prometheus | grep -E '^shredkv_(people|erased|pending_purge|erasures_since_rotation) '
run --db db report --out "$REPORT"
note "Open $REPORT in a browser: people, erasures by level over time, pending work, retention, audit chain."
note "Done. The store in $WORK is removed on exit."
