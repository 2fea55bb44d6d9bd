"""Serving the app safely: which Host names it answers to (DNS rebinding), and fair sharing with training.

:class:`HostCheck` is an ASGI middleware that refuses any request whose ``Host`` header is not one the app
serves: a page on ``evil.example`` that resolves its own name to 127.0.0.1 can then neither start runs nor
read results. :func:`allowed_hosts` builds the list from the address served and the user's additions.
:class:`TrainingFirst` keeps a burst of explorers from starving a fine-tuning run.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from typing import Any, Awaitable, Callable, Iterable, Iterator

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
ALLOWED_HOSTS_ENV = "GIOADA_ALLOWED_HOSTS"      # comma-separated extra names, e.g. "lab.example.org,10.0.0.5"
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")


def host_name(header: str) -> str:
    """A Host header -> the bare name: ``"[::1]:7860"`` -> ``"::1"``, ``"LocalHost.:80"`` -> ``"localhost"``."""
    h = header.strip().lower()
    if h.startswith("["):                       # [IPv6]:port
        h = h[1:h.find("]")] if "]" in h else h[1:]
    elif h.count(":") == 1:                     # name:port (a bare IPv6 address has several colons)
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def allowed_hosts(host: str, extra: Iterable[str] = (), *, share: bool = False) -> list[str]:
    """The names the app answers to: this machine's loopback names, the address it listens on (for
    0.0.0.0: this machine's name and addresses), ``extra``, and ``$GIOADA_ALLOWED_HOSTS``.
    A leading ``*.`` matches any sub-domain; ``share`` adds ``*.gradio.live`` (the public link)."""
    names = list(LOCAL_HOSTS)
    if host in WILDCARD_ADDRESSES:
        try:
            hostname = socket.gethostname()
            names += [hostname, socket.getfqdn(), *socket.gethostbyname_ex(hostname)[2]]
        except OSError:
            pass
    else:
        names.append(host)
    names += [*extra, *os.environ.get(ALLOWED_HOSTS_ENV, "").split(",")]
    if share:
        names.append("*.gradio.live")
    out: list[str] = []
    for n in names:
        n = host_name(n) if not n.strip().startswith("*.") else n.strip().lower().rstrip(".")
        if n and n not in out:
            out.append(n)
    return out


class HostCheck:
    """ASGI middleware: answer 403 (HTTP) or close with 1008 (WebSocket) unless the Host is allowed."""

    def __init__(self, app: Callable[..., Awaitable[None]], allowed: Iterable[str]) -> None:
        self.app = app
        allowed = list(allowed)
        self.exact = {h for h in allowed if not h.startswith("*.")}
        self.suffixes = tuple(h[1:] for h in allowed if h.startswith("*."))   # "*.x.org" -> ".x.org"
        self.shown = ", ".join(allowed)

    def allows(self, header: str) -> bool:
        name = host_name(header)
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
        if self.allows(header):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = host_name(header)[:80] or "(none)"
        body = (f"403 Forbidden: this gioada app does not answer to the host {shown!r}. It answers to: "
                f"{self.shown}. To serve another name, start it with --allowed-hosts NAME (or set "
                f"{ALLOWED_HOSTS_ENV}).\n").encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.])(?:/[\w.@+-]+){2,}/?")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part: messages never show the server's folders."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


class TrainingFirst:
    """An :class:`~gioada.explore.Explorer` that gives way to a training run.

    While ``busy()`` (a fine-tuning run trains), explore calls run one at a time, each on a single torch
    thread (torch's CPU thread count is per thread, so the run keeps all of its own): a burst of explorers
    gets slower instead of starving the run. When nothing trains they run as before, concurrently.
    """

    def __init__(self, explorer: Any, busy: Callable[[], bool]) -> None:
        self._explorer, self._busy = explorer, busy
        self._one = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._explorer, name)

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        if not self._busy():
            yield
            return
        import torch
        with self._one:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                yield
            finally:
                torch.set_num_threads(threads)

    def scene(self, *args: Any, **kwargs: Any) -> Any:
        with self._turn():
            return self._explorer.scene(*args, **kwargs)

    def upload(self, *args: Any, **kwargs: Any) -> Any:
        with self._turn():
            return self._explorer.upload(*args, **kwargs)
