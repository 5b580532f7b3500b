#!/usr/bin/env bash
# Upload every file of a folder to the gateway, wait until each image is processed, print the results.
#
#   ./script.sh                    the sample photos in images/ (next to this script)
#   ./script.sh ~/Pictures/trip    another folder: its regular files, not sub-folders; hidden files
#                                  and *.md notes (such as images/ATTRIBUTION.md) are skipped
#
# Environment:
#   GATEWAY_URL       the gateway's address (default http://localhost:8000)
#   POLL_TIMEOUT_S    how long to wait for every image to be completed or failed (default 600)
#   POLL_INTERVAL_S   pause between two polling rounds (default 2)
#   GATEWAY_API_KEY   sent as `Authorization: Bearer <key>` when set
#
# Each upload carries an Idempotency-Key made of the file's sha256 and its absolute path, so running
# the script again after an interruption (or twice) gets the first answers back and stores nothing twice.
#
# Exit status: 0 when every file was accepted and completed; 1 when an upload was refused, an image
# failed or the wait timed out; 2 when the gateway cannot be reached or the arguments are wrong.
# Needs bash, curl and python3 (for JSON; jq is not required).
set -euo pipefail

GATEWAY_URL="${GATEWAY_URL:-http://localhost:8000}"
GATEWAY_URL="${GATEWAY_URL%/}"
POLL_TIMEOUT_S="${POLL_TIMEOUT_S:-600}"
POLL_INTERVAL_S="${POLL_INTERVAL_S:-2}"

die() {
  printf 'script.sh: %s\n' "$*" >&2
  exit 2
}

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
folder="${1:-$script_dir/images}"

(($# <= 1)) || die "usage: script.sh [FOLDER]"
[[ -d "$folder" ]] || die "no such folder: $folder"
[[ "$POLL_TIMEOUT_S" =~ ^[0-9]+$ ]] || die "POLL_TIMEOUT_S must be a whole number of seconds, not '$POLL_TIMEOUT_S'"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"

auth=()
if [[ -n "${GATEWAY_API_KEY:-}" ]]; then
  auth=(-H "Authorization: Bearer $GATEWAY_API_KEY")
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Prints one field of the JSON body in file $1: "id" or "status" (empty when absent or not JSON).
json_field() {
  python3 -c '
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        value = json.load(f).get(sys.argv[2])
except (OSError, ValueError, AttributeError):
    value = None
print(value if isinstance(value, str) else "")
' "$1" "$2"
}

# Prints the Idempotency-Key of file $1: its bytes' sha256 and a hash of its absolute path (the same
# photo in two folders is two uploads; the same file sent again is one).
idempotency_key() {
  python3 -c '
import hashlib, os, sys
path = sys.argv[1]
digest = hashlib.sha256()
with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
where = hashlib.sha256(os.path.realpath(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]
print(f"script-{digest.hexdigest()}-{where}")
' "$1"
}

# Prints "title: detail" of a problem+json body in file $1 (or the start of the body when it is not one).
problem_text() {
  python3 -c '
import json, sys
raw = open(sys.argv[1], encoding="utf-8", errors="replace").read()
try:
    body = json.loads(raw)
    print(": ".join(str(body[k]) for k in ("title", "detail") if body.get(k)))
except (ValueError, AttributeError, TypeError):
    print(" ".join(raw.split())[:200])
' "$1"
}

if ! curl -sS -o /dev/null --max-time 10 "$GATEWAY_URL/health/live"; then
  die "cannot reach the gateway at $GATEWAY_URL (is 'docker compose up' running? set GATEWAY_URL otherwise)"
fi

files=()
while IFS= read -r -d '' path; do
  files+=("$path")
done < <(find "$folder" -mindepth 1 -maxdepth 1 -type f ! -name '.*' ! -name '*.md' -print0 | LC_ALL=C sort -z)
total=${#files[@]}
((total > 0)) || die "no files to upload in $folder"

# Per file i: $work/i.name (display name), $work/i.state ("accepted <id>" or "refused <http status>"),
# $work/i.json (the last answer about it).
printf 'Uploading %d file(s) from %s to %s\n' "$total" "$folder" "$GATEWAY_URL"
refused=0
accepted=()
for i in "${!files[@]}"; do
  path="${files[$i]}"
  name="$(basename "$path")"
  n=$((i + 1))
  printf '%s' "$name" >"$work/$i.name"
  # curl -F splits an unquoted file name at ';' and ','; quote it, escaping backslashes and quotes.
  quoted="${path//\\/\\\\}"
  quoted="${quoted//\"/\\\"}"
  if ! key="$(idempotency_key "$path")" ||
    ! code="$(curl -sS -X POST "$GATEWAY_URL/api/images" ${auth[@]+"${auth[@]}"} -H "Idempotency-Key: $key" \
      -F "image=@\"$quoted\"" -o "$work/$i.json" -w '%{http_code}')"; then
    printf '[%d/%d] %s -> not sent (curl failed)\n' "$n" "$total" "$name"
    printf 'refused curl' >"$work/$i.state"
    refused=$((refused + 1))
    continue
  fi
  id="$(json_field "$work/$i.json" id)"
  if [[ "$code" == 202 && -n "$id" ]]; then
    printf '[%d/%d] %s -> %s\n' "$n" "$total" "$name" "$id"
    printf 'accepted %s' "$id" >"$work/$i.state"
    accepted+=("$i")
  else
    printf '[%d/%d] %s -> refused, HTTP %s: %s\n' "$n" "$total" "$name" "$code" "$(problem_text "$work/$i.json")"
    printf 'refused %s' "$code" >"$work/$i.state"
    refused=$((refused + 1))
  fi
done

# Poll each accepted image until it is completed or failed, or until the deadline.
waiting=(${accepted[@]+"${accepted[@]}"})
unfinished=0
if ((${#waiting[@]} > 0)); then
  printf '\nWaiting for %d image(s) to be completed or failed (timeout %s s)\n' "${#waiting[@]}" "$POLL_TIMEOUT_S"
fi
deadline=$((SECONDS + POLL_TIMEOUT_S))
while ((${#waiting[@]} > 0)); do
  still=()
  for i in "${waiting[@]}"; do
    id="$(cut -d' ' -f2 <"$work/$i.state")"
    status=""
    if code="$(curl -sS ${auth[@]+"${auth[@]}"} -o "$work/$i.poll" -w '%{http_code}' "$GATEWAY_URL/api/images/$id")"; then
      if [[ "$code" == 200 ]]; then
        mv "$work/$i.poll" "$work/$i.json"
        status="$(json_field "$work/$i.json" status)"
      elif [[ "$code" == 404 ]]; then
        status="deleted"
        printf '{"status": "deleted", "error": "the image was deleted while waiting"}' >"$work/$i.json"
      fi
    fi
    case "$status" in
      completed | failed | deleted)
        printf '  %s: %s\n' "$(cat "$work/$i.name")" "$status"
        ;;
      *) still+=("$i") ;;
    esac
  done
  waiting=(${still[@]+"${still[@]}"})
  if ((${#waiting[@]} > 0 && SECONDS >= deadline)); then
    unfinished=${#waiting[@]}
    printf 'Timed out after %s s: %d image(s) still not finished\n' "$POLL_TIMEOUT_S" "$unfinished" >&2
    break
  fi
  if ((${#waiting[@]} > 0)); then
    sleep "$POLL_INTERVAL_S"
  fi
done

# The results table (file, status, caption or error); python3 exits 1 when an image did not complete.
printf '\n'
all_completed=true
python3 - "$work" "$total" <<'PY' || all_completed=false
import json
import sys
from pathlib import Path

work, total = Path(sys.argv[1]), int(sys.argv[2])
rows, all_completed = [], True
for i in range(total):
    name = (work / f"{i}.name").read_text(encoding="utf-8")
    kind, _, value = (work / f"{i}.state").read_text(encoding="utf-8").partition(" ")
    try:
        body = json.loads((work / f"{i}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    if kind == "refused":
        rows.append((name, f"refused ({value})", str(body.get("detail") or body.get("title") or "")))
        continue
    status = str(body.get("status", "unknown"))
    caption = body.get("caption")
    text = caption.get("text") if isinstance(caption, dict) else caption
    if status != "completed":
        all_completed = False
        text = body.get("error") or text or ("not finished" if status in ("pending", "processing") else "")
    rows.append((name, status, str(text or "")))
header = ("file", "status", "caption")
width = [max(len(row[col]) for row in (header, *rows)) for col in (0, 1)]
for name, status, text in (header, ("-" * width[0], "-" * width[1], "-" * 7), *rows):
    print(f"{name:<{width[0]}}  {status:<{width[1]}}  {text}")
sys.exit(0 if all_completed else 1)
PY

printf '\nGET /api/stats\n'
if ! curl -sS ${auth[@]+"${auth[@]}"} "$GATEWAY_URL/api/stats" | python3 -m json.tool; then
  printf 'could not read %s/api/stats\n' "$GATEWAY_URL" >&2
fi

if ((refused > 0 || unfinished > 0)) || [[ "$all_completed" != true ]]; then
  exit 1
fi
