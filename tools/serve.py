#!/usr/bin/env python3
"""`./build.sh serve`: a static server for dist/ that makes the page cross-origin isolated.

COOP `same-origin` + COEP `require-corp` give the page SharedArrayBuffer, which the threaded wasm module needs
(its rayon pool shares one memory between Web Workers). Every file is same-origin, so COEP blocks nothing.
A host that cannot send these headers still gets isolation from the service worker (www/sw.js adds them to the
responses it serves, the coi-serviceworker technique), after one reload.
Usage: tools/serve.py DIR PORT (loopback only)."""
import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class IsolatedHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript", ".mjs": "text/javascript",
                      ".webmanifest": "application/manifest+json"}

    def end_headers(self):
        for name, value in ISOLATION.items():
            self.send_header(name, value)
        super().end_headers()


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} DIR PORT (expected 2 arguments, found {len(sys.argv) - 1})")
    directory, port = sys.argv[1], int(sys.argv[2])
    handler = functools.partial(IsolatedHandler, directory=directory)
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving {directory} on http://localhost:{port} (cross-origin isolated: COOP + COEP)", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
