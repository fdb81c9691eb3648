"""Demo backends: tiny HTTP servers that say which one answered."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        body = f"server {self.server.name} ({self.server.server_address[1]}): {self.command} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_POST = do_GET

    def log_message(self, *args):
        pass


def start_backends(ports, host: str = "127.0.0.1") -> list[ThreadingHTTPServer]:
    servers = []
    for number, port in enumerate(ports, start=1):
        server = ThreadingHTTPServer((host, port), _Handler)
        server.daemon_threads = True
        server.name = f"s{number}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return servers
