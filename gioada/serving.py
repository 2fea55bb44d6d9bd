"""Serving the app safely: which Host names it answers to (DNS rebinding), and fair sharing with training.

:class:`HostCheck` is an ASGI middleware that refuses any request whose ``Host`` header is not one the app
serves: a page on ``evil.example`` that resolves its own name to 127.0.0.1 can then neither start runs nor
read results. :func:`allowed_hosts` builds the list from the address served and the user's additions.
:class:`ComputeTurns` and :class:`TrainingFirst` keep a burst of explorers from starving a fine-tuning run.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
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


class ComputeTurns:
    """A training run's steps and Explore's computations take turns on the CPU instead of sharing it.

    On two cores a run's OpenMP threads spin at their barriers and collapse when anything else computes
    beside them (``bench/bench_threads.py``), so sharing costs far more than its share. Turns: each
    step holds the CPU; before a step one waiting explorer gets it first, if explorers have used less of
    it than the steps so far (a time balance, capped at 5 s either way). A run thus keeps about half the
    CPU time whatever the burst, and each explorer gets all of it in its turn. Outside steps (evaluation,
    previews) explorers go one after another.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: str | None = None        # "step" or "explore" while one computes
        self._waiting = 0                     # explorers waiting for a turn
        self._served = 0                      # explorers served so far
        self._step_pending = False            # a step is waiting for its turn
        self._step_next = False               # ... and no new explorer may start before it
        self._credit = 0.0                    # seconds of steps minus seconds of explorers: explorers go when > 0
        self._started = 0.0

    def begin_step(self, patience: float = 2.0) -> None:
        """Before a training step: first let one waiting explorer through (waiting at most ``patience`` s)."""
        with self._cond:
            self._step_pending = True
            if self._waiting and self._credit > 0:
                served = self._served
                self._cond.wait_for(lambda: self._served > served or not self._waiting, timeout=patience)
            self._step_next = True
            self._cond.wait_for(lambda: self._owner is None)
            self._owner, self._step_pending, self._step_next = "step", False, False
            self._started = time.monotonic()

    def end_step(self) -> None:
        """After a training step (safe to call when no step holds the turn)."""
        with self._cond:
            if self._owner == "step":
                self._owner = None
                self._credit = min(self._credit + time.monotonic() - self._started, 5.0)
                self._cond.notify_all()

    @contextlib.contextmanager
    def explore(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: self._owner is None and not self._step_next)
            finally:
                self._waiting -= 1
            self._owner = "explore"
            started = time.monotonic()
        try:
            yield
        finally:
            with self._cond:
                self._owner = None
                self._credit = max(self._credit - (time.monotonic() - started), -5.0)
                self._served += 1
                self._step_next = self._step_pending    # a waiting step goes next
                self._cond.notify_all()


class TrainingFirst:
    """An :class:`~gioada.explore.Explorer` that takes turns with a training run (:class:`ComputeTurns`).

    While ``busy()`` (a fine-tuning run trains), each explore call waits for its turn between two
    training steps: a burst of explorers gets slower instead of starving the run. When nothing trains
    they run as before, concurrently.
    """

    def __init__(self, explorer: Any, busy: Callable[[], bool], turns: ComputeTurns) -> None:
        self._explorer, self._busy, self._turns = explorer, busy, turns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._explorer, name)

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        if not self._busy():
            yield
            return
        with self._turns.explore():
            yield

    def scene(self, *args: Any, **kwargs: Any) -> Any:
        with self._turn():
            return self._explorer.scene(*args, **kwargs)

    def upload(self, *args: Any, **kwargs: Any) -> Any:
        with self._turn():
            return self._explorer.upload(*args, **kwargs)
