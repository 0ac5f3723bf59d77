"""`lambench serve RUN`: a run's static site over HTTP on 127.0.0.1, for people who prefer a URL to a
file. Read-only (the standard library's static file handler, confined to the site folder) and never
on another interface."""

from __future__ import annotations

import argparse
import functools
import http.server
from pathlib import Path

from lambench_core.errors import InputError

LOOPBACK = "127.0.0.1"


def site_folder(run: Path) -> Path:
    """The site of RUN: a site folder itself, a run folder holding site/, or a work directory whose
    latest run is taken."""
    candidates = [run, run / "site"]
    runs = run / "runs"
    if runs.is_dir():
        latest = sorted((p for p in runs.iterdir() if (p / "site" / "index.html").is_file()), key=lambda p: p.name)
        candidates += [latest[-1] / "site"] if latest else []
    for folder in candidates:
        if (folder / "index.html").is_file():
            return folder
    raise InputError(run, None, "no site here: give a run's site/ folder, a run folder or a work directory")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass  # one line per request would drown the URL; errors still reach the browser


def serve(folder: Path, port: int) -> None:
    handler = functools.partial(QuietHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer((LOOPBACK, port), handler) as server:
        bound = server.server_address[1]
        print(f"serving {folder} at http://{LOOPBACK}:{bound}/index.html (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")


def command_serve(args: argparse.Namespace) -> int:
    serve(site_folder(args.run), args.port)
    return 0


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    from workflows import arguments

    serve_parser = commands.add_parser("serve", help="serve a run's site on 127.0.0.1 (read-only)")
    serve_parser.add_argument(
        "run", type=arguments.path, help="a run's site/ folder, its run folder, or a work directory (its latest run)"
    )
    serve_parser.add_argument(
        "--port",
        # Checked where every option is: a bad port is one line and exit 2 before anything starts.
        type=arguments.whole_number(ge=0, lt=65536, rule="must be a port number from 0 to 65535"),
        default=8000,
        help="port (0: any free one; default 8000)",
    )
