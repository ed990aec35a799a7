"""`unveil serve`: the local page (see `pipelines.serve`)."""

from __future__ import annotations

import argparse
import logging
import socket

from unveil.errors import UnveilError

from .options import add_max_yaw_argument, count, examples
from .serve import MAX_BYTES

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="a local web page: upload a photo or a video and see the readings",
                       description="Serve one page on which a photo, a webcam snapshot or a video is read with the "
                                   "shipped models: boxes, each face's crops and the readings as bars; for a "
                                   "video, the annotated video and its timeline. Needs the web extra: "
                                   "pip install -e '.[web]'.",
                       epilog=examples(
                           "unveil serve                        # then open http://127.0.0.1:8000",
                           "unveil serve --port 8080 --max-upload-mb 50"))
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=port_number, default=8000, help="port, 1 to 65535 (default 8000)")
    p.add_argument("--max-upload-mb", type=count(1), default=MAX_BYTES // 2**20, help="largest upload (default 20)")
    p.add_argument("--device", default="cpu", help="where the models run (default cpu)")
    add_max_yaw_argument(p)
    p.set_defaults(run=run_serve)


def port_number(text: str) -> int:
    """An argparse type for --port: a TCP port, 1 .. 65535 (socket's own OverflowError would be a traceback)."""
    value = count(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {value}")
    return value


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .serve import create_app
        app = create_app(args.device, args.max_upload_mb * 2**20, max_yaw=args.max_yaw)
    except ImportError as exc:
        raise UnveilError(f"unveil serve needs FastAPI, uvicorn and python-multipart ({exc.name} is missing): "
                          f"pip install -e '.[web]'") from None
    check_port(args.host, args.port)
    log.info(f"unveil: serving on http://{args.host}:{args.port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def check_port(host: str, port: int) -> None:
    """One clear line for an address that cannot be listened on, before uvicorn would log it its own way."""
    try:
        with socket.create_server((host, port)):
            pass
    except (OSError, TypeError, UnicodeError) as exc:  # TypeError: a NUL in the host name
        raise UnveilError(f"--host {host} --port {port}: cannot listen there "
                          f"({getattr(exc, 'strerror', None) or exc})") from None
