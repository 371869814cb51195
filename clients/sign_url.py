#!/usr/bin/env python3
"""Signs a Signet image URL, as a customer's backend does.

The README's Python snippet, runnable. It does not URL-encode the base64
text (a raw '+' and '/' reach the server), strips the '=' padding, and lets
json.dumps escape non-ASCII characters as \\uXXXX.

Usage: sign_url.py HOST USER_ID SECRET BASE_ID [NAME=TEXT ...]
"""
import base64, hashlib, hmac, json, sys


def signed_url(host, user_id, secret, base_id, mods, ext="png"):
    encoded = base64.b64encode(json.dumps(mods, separators=(",", ":")).encode()).decode().rstrip("=")
    sig = hmac.new(secret.encode(), f"{user_id}+{base_id}+{encoded}".encode(), hashlib.sha256).hexdigest()
    return f"{host}/{user_id}/{base_id}.{ext}?modifications={encoded}&s={sig}"


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    host, user_id, secret, base_id = sys.argv[1:5]
    mods = [dict(zip(("name", "text"), arg.split("=", 1))) for arg in sys.argv[5:]]
    print(signed_url(host, user_id, secret, base_id, mods))
