#!/bin/sh
# Signs a Signet image URL with printf, base64 and openssl, as the README's
# shell snippet does: the JSON is written by hand, so this signs one text
# layer, and the text must not need JSON escaping (no " or \).
#
# Usage: sign_url.sh HOST USER_ID SECRET BASE_ID [NAME=TEXT]
set -eu
[ $# -ge 4 ] || { echo "usage: sign_url.sh HOST USER_ID SECRET BASE_ID [NAME=TEXT]" >&2; exit 2; }
HOST=$1 USER_ID=$2 SECRET=$3 BASE=$4
if [ $# -ge 5 ]; then
  JSON=$(printf '[{"name":"%s","text":"%s"}]' "${5%%=*}" "${5#*=}")
else
  JSON='[]'
fi
MODS=$(printf '%s' "$JSON" | base64 -w0 | tr -d '=')
SIG=$(printf '%s' "$USER_ID+$BASE+$MODS" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
echo "$HOST/$USER_ID/$BASE.png?modifications=$MODS&s=$SIG"
