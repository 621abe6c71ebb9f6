"""Image files for tests: the scikit-learn digits rendered as PNG files (nothing downloaded),
and a local HTTP server to fetch them from."""

from __future__ import annotations

import functools
import http.server
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["digit_png", "digits", "serve_folder", "write_digit_folder"]


@functools.cache
def digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The 1797 8x8 digit images (0-16) and their classes."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.images), np.asarray(bunch.target)


def digit_png(image: np.ndarray[Any, Any], scale: int = 8) -> bytes:
    """An 8x8 digit as a grey PNG, each pixel a scale x scale block, ink dark on white."""
    from PIL import Image

    grey = (255 - np.clip(image / 16.0, 0, 1) * 255).astype(np.uint8)
    big = np.kron(grey, np.ones((scale, scale), dtype=np.uint8))
    out = io.BytesIO()
    Image.fromarray(big, mode="L").save(out, format="PNG")
    return out.getvalue()


def write_digit_folder(folder: Path, n: int | None = None, scale: int = 8) -> list[Path]:
    """The first ``n`` digits (all by default) as ``folder/<class>/digit_<i>.png``."""
    images, targets = digits()
    paths = []
    for i in range(len(images) if n is None else n):
        path = folder / str(int(targets[i])) / f"digit_{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(digit_png(images[i], scale))
        paths.append(path)
    return paths


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """``folder`` served over HTTP on 127.0.0.1 from a thread; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
