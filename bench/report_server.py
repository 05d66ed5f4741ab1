#!/usr/bin/env python
"""A tiny loopback HTTP server that sends one report file as Finale would: the benchmark's "fast network".

    python bench/report_server.py FILE --account A --key K --secret S [--port 0]

GET /<account>/doc/report/pivotTableStream/<id>/Report.csv (any query) with the right HTTP Basic credentials
gets FILE's bytes with a Content-Length, sent by `sendfile` (the kernel copies the page cache to the socket:
no Python per byte). FILE is opened per request, so replacing it atomically (os.replace) publishes a new
version without mixing two in one body. Anything else: 401 or 404. Stdlib only, in its own process, so it
never shares the GIL with the sync it serves. It prints `PORT=<n>` once it listens, then serves until
SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with Content-Length, as Finale's front end does
    server_version = "bench-report-server"

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass

    def do_GET(self):
        server: ReportServer = self.server
        path = self.path.split("?", 1)[0].strip("/").split("/")
        if not hmac.compare_digest(self.headers.get("Authorization", "").encode(), server.auth):
            return self._plain(401, b"Unauthorized: the API key or secret is not valid.")
        if len(path) != 6 or path[0] != server.account or path[1:4] != ["doc", "report", "pivotTableStream"]:
            return self._plain(404, b"Not found.")
        try:
            handle = open(server.file, "rb")  # noqa: SIM115 - closed below, after sendfile
        except FileNotFoundError:
            return self._plain(404, b"No report yet.")
        with handle:
            size = os.fstat(handle.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.flush()
            self.connection.sendfile(handle)
        server.served += 1

    def _plain(self, status: int, body: bytes):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ReportServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, *, file: str, account: str, key: str, secret: str):
        super().__init__(("127.0.0.1", port), Handler)
        self.file = file
        self.account = account
        self.auth = ("Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode("ascii")).encode()
        self.served = 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--account", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ReportServer(args.port, file=args.file, account=args.account, key=args.key, secret=args.secret)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"PORT={server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
