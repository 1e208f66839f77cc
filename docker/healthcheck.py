"""The clean image's HEALTHCHECK: GET /healthz on the port the review tool listens on."""

import os
import sys
import urllib.request

port = os.environ.get("RECYCLOPS_CLEAN__PORT", "8080")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except OSError as exc:
    print(f"healthcheck: {exc}", file=sys.stderr)
    sys.exit(1)
