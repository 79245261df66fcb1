"""What the status page's tests share besides their fixtures: GETs of a page server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class Http:
    """A server of the page on 127.0.0.1:port, and GETs of it."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def up(self) -> bool:
        try:
            return self.get("/healthz")[0] in (200, 503)
        except OSError:
            return False
