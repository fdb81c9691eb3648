"""A ready example: three demo backends behind fastlb, round robin.

    python -m fastlb.demo            # serve until Ctrl-C
    python -m fastlb.demo --check    # start, send a few requests, show who answered, stop
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from pathlib import Path

from .backends import start_backends

FRONTEND = ("127.0.0.1", 8080)
BACKEND_PORTS = (9001, 9002, 9003, 9004)   # the configs use some or all of them


def wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastlb.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="send 6 requests, print, exit")
    parser.add_argument("-n", type=int, default=2, help="fastlb workers (default 2)")
    parser.add_argument("--config", help="a config listening on 127.0.0.1:8080 with servers on "
                                         "127.0.0.1:9001-9004 (default: the bundled round robin)")
    parser.add_argument("--paths", default="/", help="comma-separated paths to request")
    args = parser.parse_args(argv)

    servers = start_backends(BACKEND_PORTS)
    config = Path(args.config) if args.config else \
        resources.files("fastlb.demo").joinpath("roundrobin.cfg")
    with resources.as_file(config) as path:
        print(f"demo backends: {', '.join(f'127.0.0.1:{p}' for p in BACKEND_PORTS)}")
        print(f"config: {path}\n{path.read_text()}")
        # -P: run the installed fastlb even from a source checkout (no compiled core there)
        proc = subprocess.Popen([sys.executable, "-P", "-m", "fastlb", "-f", str(path), "-n", str(args.n)])
        try:
            wait_listening(*FRONTEND)
            url = f"http://{FRONTEND[0]}:{FRONTEND[1]}/"
            print(f"fastlb (pid {proc.pid}) listens on {url}")
            for _ in range(6 // len(args.paths.split(",")) or 1):
                for path in args.paths.split(","):
                    with urllib.request.urlopen(url.rstrip("/") + path, timeout=5) as response:
                        print("  " + response.read().decode().strip())
            if args.check:
                return 0
            print(f"\ntry: curl {url}   (Ctrl-C stops the demo)")
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            proc.wait()
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=5)
            for server in servers:
                server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
