"""Small synthetic IDX files and a local HTTP server for the data set tests (no real network)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np

TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Raw IDX bytes of a uint8 array (magic 0x0803 for 3-d, 0x0801 for 1-d unless given)."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_set(n_train: int = 12, n_test: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays of a tiny MNIST-shaped data set, keyed by the standard file names."""
    rng = np.random.default_rng(seed)
    return {
        TRAIN_FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        TRAIN_FILES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        TEST_FILES[0]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        TEST_FILES[1]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def fake_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {name: gz(idx_bytes(a)) for name, a in arrays.items()}


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@dataclass
class Route:
    body: bytes
    mode: str = "ok"  # ok | cut (dies mid-body) | short (Content-Length too small) | slow | 404


@dataclass
class Server:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            server.requests.append(self.path)
            route = server.routes.get(self.path.rsplit("/", 1)[-1])
            if route is None or route.mode == "404":
                self.send_error(404)
                return
            if route.mode == "slow":
                time.sleep(1.5)
            body = route.body
            length = len(body) // 2 if route.mode == "short" else len(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if route.mode in ("cut", "short") else body)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args) -> None:
            pass

    return Handler


class _Quiet(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """The client gave up (timeout test): nothing to report."""


def start_server() -> tuple[Server, http.server.ThreadingHTTPServer]:
    state = Server(url="")
    httpd = _Quiet(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return state, httpd
