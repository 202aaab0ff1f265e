"""A stand-in for a bank's API, to try the HTTP tool and the post-call webhook of
examples/agents/bank.yaml on one machine (standard library only; see docs/tools.md).

    BANK_API_TOKEN=demo VOXLINE_WEBHOOK_SECRET=whsec-demo python examples/tools/bank_api.py --delay 1.5

- GET /cards/<last4>/delivery (Authorization: Bearer $BANK_API_TOKEN): when the new card arrives;
  0000 is a card that does not exist (404). `--delay` makes it slow (the agent says its filler line).
- POST /webhook: receives voxline's post-call webhook, checks its signature with
  $VOXLINE_WEBHOOK_SECRET and prints the call's outcome and transcript.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import hmac
import json
import os
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELIVERY = re.compile(r"^/cards/(\d{4})/delivery$")
MAX_BODY = 2_000_000


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or abs(time.time() - int(fields["t"])) > 300:
        return False
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


class BankApi(BaseHTTPRequestHandler):
    delay_s = 0.0

    def _send(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        match = DELIVERY.match(self.path.split("?", 1)[0])
        if match is None:
            return self._send(404, {"error": "not found"})
        if self.headers.get("Authorization") != f"Bearer {os.environ.get('BANK_API_TOKEN', '')}":
            return self._send(401, {"error": "unauthorised"})
        time.sleep(self.delay_s)
        last4 = match.group(1)
        if last4 == "0000":
            return self._send(404, {"error": f"no replacement card ending {last4} was ordered"})
        arrives = datetime.date.today() + datetime.timedelta(days=3)
        self._send(200, {"last4": last4, "status": "dispatched", "arrives": arrives.strftime("%A %d %B")})

    def do_POST(self) -> None:
        if self.path != "/webhook":
            return self._send(404, {"error": "not found"})
        body = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), MAX_BODY))
        secret = os.environ.get("VOXLINE_WEBHOOK_SECRET", "")
        if not secret or not signature_ok(secret, body, self.headers.get("X-Voxline-Signature", "")):
            print("webhook REJECTED: bad or missing signature")
            return self._send(401, {"error": "bad signature"})
        call = json.loads(body)
        print(f"call {call['call_id']}: {call['outcome']}")
        for line in call["transcript"]:
            print(f"  {line['role']:>6}: {line['text']}")
        self._send(200, {"ok": True})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each delivery answer")
    args = parser.parse_args()
    BankApi.delay_s = args.delay
    server = ThreadingHTTPServer(("127.0.0.1", args.port), BankApi)
    print(f"bank API on http://127.0.0.1:{args.port} (delivery delay {args.delay:g} s)")
    server.serve_forever()


if __name__ == "__main__":
    main()
