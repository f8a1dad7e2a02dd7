#!/usr/bin/env python3
"""A webhook receiver for `make run`: prints each POST (headers of note and
the JSON body) and answers 200. Usage: scripts/receiver.py [PORT] (default 9999)."""
import http.server
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9999


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        for name in ("X-Alert-Intake-Event-Id", "X-Alert-Intake-Timestamp", "X-Alert-Intake-Signature"):
            if self.headers.get(name):
                print("%s: %s" % (name, self.headers[name]))
        print(body.decode("utf-8", "replace"), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


print("receiver listening on http://127.0.0.1:%d/hook" % PORT, flush=True)
http.server.HTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()
