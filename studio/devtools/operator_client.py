"""The load run's operator: one keep-alive HTTP/1.1 connection with a cookie jar, on the
standard library's http.client.

The clients share the server's 2 cores, so what they spend is taken from the server. httpx
spent about 4 ms of CPU a request here (its request and response models, header
normalisation, cookie policy, the transport stack); this spends well under one, doing only
what a browser does for these pages: send the session and CSRF cookies back, follow nothing.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass
class Response:
    status_code: int
    text: str


class OperatorClient:
    def __init__(self, base: str, *, timeout: float = 30) -> None:
        parts = urlsplit(base)
        self.host, self.port, self.timeout = parts.hostname or "", parts.port or 80, timeout
        self.connection: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        url = f"{path}?{urlencode(params, doseq=True)}" if params else path
        sent = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if data is not None:
            body = urlencode(data, doseq=True).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            return self._send(method, url, body, sent)
        # No retry: a dropped request counts against the server, as it did before.
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def _send(self, method: str, url: str, body: bytes | None, headers: dict) -> Response:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.connection.request(method, url, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header in response.headers.get_all("Set-Cookie") or ():
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if response.will_close:
            self.close()
        return Response(response.status, text)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
