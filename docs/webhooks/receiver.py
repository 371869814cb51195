#!/usr/bin/env python3
"""A Signet webhook receiver that verifies each delivery's signature.

Standard library only. Run it with the endpoint's secret:

    WEBHOOK_SECRET=whsec_... PORT=8000 python3 receiver.py

It answers 204 to a delivery whose signature holds (printing one JSON line
per event on stdout) and 400 to any other request. Duplicates (a retry of
a delivery whose answer was lost) carry the same `webhook-id`: it prints
them with "duplicate": true, and a real receiver would skip them.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["WEBHOOK_SECRET"]
# A delivery older (or newer) than this is refused, so a captured one
# cannot be replayed later.
TOLERANCE_S = 5 * 60
MAX_BODY = 1024 * 1024


def verify(secret, msg_id, timestamp, body, signatures):
    """Whether one of the `v1,` signatures matches, in constant time."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # The header may hold several space-separated signatures (key rotation).
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


seen = set()
# Deliveries come in on several threads: one line at a time.
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            return self.answer(413)
        body = self.rfile.read(length)
        msg_id = self.headers.get("webhook-id", "")
        timestamp = self.headers.get("webhook-timestamp", "")
        signatures = self.headers.get("webhook-signature", "")
        try:
            fresh = abs(time.time() - int(timestamp)) <= TOLERANCE_S
        except ValueError:
            fresh = False
        if not (fresh and verify(SECRET, msg_id, timestamp, body, signatures)):
            return self.answer(400)
        event = json.loads(body)
        with lock:
            line = {"id": msg_id, "event": event["event"], "verified": True,
                    "duplicate": msg_id in seen}
            seen.add(msg_id)
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
        self.answer(204)

    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
