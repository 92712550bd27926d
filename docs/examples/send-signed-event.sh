#!/bin/sh
# Send a JSON file to Homeostat, signed as docs/security.md describes.
#
#   HOMEOSTAT_URL=http://127.0.0.1:8080 HOMEOSTAT_TOKEN=... HOMEOSTAT_SECRET=... \
#     send-signed-event.sh /v1/events/deploys event.json
#
# HOMEOSTAT_TOKEN is webhooks.bearer_token (leave it empty when only a secret is set);
# HOMEOSTAT_SECRET is webhooks.hmac_secret. Sign every request, retries included, when it is sent.
set -eu
path=$1
file=$2
timestamp=$(date +%s)
signature=$(
  { printf 'v1:%s:%s:' "$timestamp" "$path"; cat "$file"; } |
    openssl dgst -sha256 -hmac "$HOMEOSTAT_SECRET" -r | cut -d ' ' -f 1
)
set -- -H "Content-Type: application/json" \
  -H "X-Homeostat-Timestamp: $timestamp" -H "X-Homeostat-Signature: v1=$signature"
if [ -n "${HOMEOSTAT_TOKEN:-}" ]; then
  set -- "$@" -H "Authorization: Bearer $HOMEOSTAT_TOKEN"
fi
exec curl --silent --show-error --fail-with-body "$@" --data-binary "@$file" "$HOMEOSTAT_URL$path"
