"""Time to the first streamed example over loopback HTTP, as a user streaming a remote zip waits for it.

    python benchmarks/bench_stream.py ARCHIVE [ARCHIVE ...] [--repeat 5]

The archive is served by a loopback HTTP server that answers HEAD and single Range requests (as the hub's
CDN does). Each run is a fresh interpreter that calls `imagenet_sketch.load(URL, streaming=True)` and takes
the first example; it reports the seconds from the call to the first example (imports excluded, they are
timed apart) and the requests the server saw. Medians and the spread (min-max) of the runs are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIRST_EXAMPLE = """
import json, sys, time
started = time.perf_counter()
import imagenet_sketch
imported = time.perf_counter()
first = next(iter(imagenet_sketch.load(sys.argv[1], streaming=True, cache_dir=sys.argv[2])))
done = time.perf_counter()
print("RESULT", json.dumps({"import_s": imported - started, "first_s": done - imported, "wnid": first["wnid"]}))
"""


def serve(path: str) -> tuple[ThreadingHTTPServer, list[str]]:
    """A loopback server for `path` with HEAD and single byte ranges; returns it and its request log."""
    size = os.path.getsize(path)
    log: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_HEAD(self):
            log.append("HEAD")
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()

        def do_GET(self):
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            start, end = (int(match[1]), int(match[2] or size - 1)) if match else (0, size - 1)
            end = min(end, size - 1)
            log.append(f"GET {start}-{end}")
            self.send_response(206 if match else 200)
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            with open(path, "rb") as file:
                file.seek(start)
                remaining = end - start + 1
                while remaining and (chunk := file.read(min(remaining, 1 << 20))):
                    self.wfile.write(chunk)
                    remaining -= len(chunk)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, log


def run_once(url: str, cache_dir: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", FIRST_EXAMPLE, url, cache_dir], capture_output=True, text=True, check=False
    )
    line = next((line for line in done.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"the streaming run failed:\n{done.stderr[-2000:]}")
    return json.loads(line[len("RESULT ") :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archives", nargs="+", help="zips made by benchmarks/make_archive.py (or the real one)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache-dir", default="/tmp/bench-stream-cache")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("| archive | members | first example (median, min-max) | imports | requests |")
    print("|---|---|---|---|---|")
    for path in args.archives:
        server, log = serve(path)
        url = f"http://127.0.0.1:{server.server_address[1]}/{os.path.basename(path)}"
        runs = []
        for _ in range(args.repeat):
            log.clear()
            runs.append({**run_once(url, args.cache_dir), "requests": len(log)})
        server.shutdown()
        firsts = [run["first_s"] for run in runs]
        imports = statistics.median(run["import_s"] for run in runs)
        import zipfile

        with zipfile.ZipFile(path) as archive:
            members = sum(1 for info in archive.infolist() if not info.is_dir())
        print(
            f"| {os.path.basename(path)} | {members:,} | {statistics.median(firsts):.2f} s "
            f"({min(firsts):.2f}-{max(firsts):.2f}) | {imports:.2f} s | {runs[-1]['requests']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
