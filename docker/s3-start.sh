#!/bin/sh
# Start SeaweedFS (`weed mini`) with one S3 identity made from S3_ACCESS_KEY / S3_SECRET_KEY:
# without them the S3 API would accept anyone.
set -eu
: "${S3_ACCESS_KEY:?set S3_ACCESS_KEY (and S3_SECRET_KEY) in .env}"
: "${S3_SECRET_KEY:?set S3_SECRET_KEY in .env}"
dir="${S3_DIR:-/srv/s3}"
conf="$(mktemp)"
umask 077
cat >"$conf" <<JSON
{"identities": [{"name": "recyclops",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
exec weed mini -dir="$dir" -ip=127.0.0.1 -ip.bind=0.0.0.0 -s3.port=8333 \
  -s3.config="$conf" -bucket="${S3_BUCKET:-recyclops}" -admin.ui=false -webdav=false "$@"
