"""Serving the app safely: which Host names it answers to (DNS rebinding), and fair sharing with training.

:class:`HostCheck` is an ASGI middleware that refuses any request whose ``Host`` header is not one the app
serves: a page on ``evil.example`` that resolves its own name to 127.0.0.1 can then neither start runs nor
read results. :func:`allowed_hosts` builds the list from the address served and the user's additions.
:class:`ComputeThread` runs the app's torch work on one thread, where a fine-tuning run's steps take turns with
Explore and the lab (:class:`OnComputeThread`), so that a burst of explorers cannot starve the run.
"""
from __future__ import annotations

import collections
import logging
import os
import re
import socket
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterable, Iterator, Sequence

log = logging.getLogger(__name__)
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


CALL_WEIGHT = 8.0       # a call's seconds count this much against a run's steps: while calls wait, they get ~1/9 of the thread
# bench/bench_load.py (16 clients at once): weight 3 kept 41-46% of the run's idle speed, 6 kept 50%, 8 keeps
# 55-56%; the burst's median latency goes from 7 s to 9.5 s. A lone click still runs at the next step (banked credit).
MAX_CREDIT = 1.0        # seconds of calls a run banks while nobody waits (a burst then starts at the balance)
CROWD_SECONDS = 2.0     # steps stay on one torch thread this long after the last waiting call
# Calls (an Explore click, a lab step) are small: on one torch thread they leave the other core to the
# browser and the server's encoding. On two, the pair waiting at its barriers for a busy core made an
# Explore click in Chromium 1.8x slower (444 -> 818 ms, bench/bench_browser.py explore).
CALL_THREADS = 1


class ComputeThread:
    """Every torch computation of the app on one OS thread, and a training run's steps taking turns with the rest.

    One thread, because torch's CPU kernels run on OpenMP teams, and GNU OpenMP keeps a team of worker
    threads for every OS thread that ever ran a parallel kernel. Once those add up to more threads than
    cores, every team stops spinning at its barriers (libgomp's throttled wait) and sleeps in the kernel
    between kernels: a fine-tuning run on 2 cores lost 29% of its speed (4.33 -> 3.07 steps/s, CPU 189% ->
    126%) after a single matrix product in another thread (README, "The app, as a user feels it"; the
    teams themselves: ``tests/test_reliability.py``).

    Handlers :meth:`call` a function (it runs on this thread; the caller waits). A fine-tuning run is
    :meth:`submit`-ted and holds the thread for its whole length; before each of its steps
    (:meth:`begin_step`) one waiting call runs first if the calls have used less time than the run's steps
    (each second of a call weighs ``CALL_WEIGHT``; the run banks at most ``MAX_CREDIT`` s while nobody
    waits). A run thus keeps most of the thread whatever the burst; Explore gets slower meanwhile. A call
    made from this thread runs at once.
    """

    def __init__(self, name: str = "gioada-compute") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._queue: collections.deque[tuple[Callable[..., Any], tuple, dict, Future]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._credit = 0.0                    # seconds of steps minus seconds of calls: calls go when > 0
        self._started: float | None = None    # when the current step began
        self._crowd_until = 0.0               # steps use one torch thread until then (calls keep coming)
        self._own_threads = 0                 # torch threads of this thread otherwise (read at the first step)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Queue ``fn(*args, **kwargs)`` for this thread; its Future holds the result or the exception."""
        future: Future = Future()
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True, name=self.name)
                self._thread.start()
            self._queue.append((fn, args, kwargs, future))
            self._cond.notify_all()
        return future

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` run on this thread with ``CALL_THREADS`` torch threads (at once if called
        from it); its result, or its exception."""
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        return self.submit(_on_threads, CALL_THREADS, fn, args, kwargs).result()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                task = self._queue.popleft()
            _run(task)
            if self._own_threads:             # a run that ended in a crowd gives its threads back
                self._threads(0)

    def begin_step(self) -> None:
        """Before a training step, on this thread: first one waiting call, if the balance is theirs.

        While calls come (and for ``CROWD_SECONDS`` after the last), steps and calls use one torch thread:
        the callers' servers encode answers on the other core, and a 2-thread team waiting at its barriers
        for a busy core lost more than the second thread gains (``bench/bench_load.py``)."""
        with self._cond:
            waiting = bool(self._queue)
            task = self._queue.popleft() if waiting and self._credit > 0 else None
        now = time.monotonic()
        if waiting:
            self._crowd_until = now + CROWD_SECONDS
        self._threads(1 if now < self._crowd_until else 0)
        if task is not None:
            _run(task)
            self._credit = max(self._credit - CALL_WEIGHT * (time.monotonic() - now), -5.0)
        self._started = time.monotonic()

    def _threads(self, n: int) -> None:
        """Compute on ``n`` torch threads (0: this thread's own count, read the first time)."""
        import torch  # imported by then: a step is about to run
        self._own_threads = self._own_threads or torch.get_num_threads()
        n = n or self._own_threads
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def serve_waiting(self) -> None:
        """Between two pieces of a run's other work (evaluation batches), on this thread: one waiting call."""
        with self._cond:
            task = self._queue.popleft() if self._queue else None
        if task is not None:
            _run(task)

    def end_step(self) -> None:
        """After a training step (safe to call when no step began)."""
        if self._started is not None:
            self._credit = min(self._credit + time.monotonic() - self._started, MAX_CREDIT)
            self._started = None


def _on_threads(n: int, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    import torch  # a call computes with torch: it is imported by then
    own = torch.get_num_threads()
    torch.set_num_threads(min(n, own))
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(own)


def _run(task: tuple[Callable[..., Any], tuple, dict, Future]) -> None:
    fn, args, kwargs, future = task
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn(*args, **kwargs))
    except BaseException as e:  # noqa: BLE001 - handed to the caller, who re-raises it
        future.set_exception(e)


class Busy(ValueError):
    """Too many scenes already wait for the compute thread: this one is answered at once, not queued."""


class OnComputeThread:
    """An :class:`~gioada.app.explore.Explorer` whose computations run on a :class:`ComputeThread`: while a
    fine-tuning run trains they take turns with its steps, so a burst of explorers slows down instead of
    starving the run. At most ``max_waiting`` scenes or uploads wait or compute at once; one more is refused
    at once with a "busy, try again" message (:class:`Busy`), so no visitor waits behind a long queue."""

    def __init__(self, explorer: Any, compute: ComputeThread, max_waiting: int = 4) -> None:
        self._explorer, self._compute = explorer, compute
        self.max_waiting = max_waiting
        self._waiting = 0
        self._prefetching = False      # a background view (:meth:`prefetch`) waits or computes
        self._next_view: tuple | None = None   # the one to compute after it
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._explorer, name)

    @contextmanager
    def _admitted(self) -> Iterator[None]:
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise Busy(f"the server is busy: {self._waiting} other scenes are being computed for other "
                           "visitors right now. Try again in a few seconds.")
            self._waiting += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1

    def scene(self, *args: Any, **kwargs: Any) -> Any:
        with self._admitted():
            return self._compute.call(self._explorer.scene, *args, **kwargs)

    def upload(self, *args: Any, **kwargs: Any) -> Any:
        with self._admitted():
            return self._compute.call(self._explorer.upload, *args, **kwargs)

    def prefetch(self, model_keys: Sequence[str], index: Any, shift: Any = 1.0) -> None:
        """Compute one view (:meth:`Explorer.prefetch`) on the compute thread in the background and return at
        once. One background view waits or computes at a time and one more is kept for after it, the latest
        asked for (it replaces an older one): however many visitors ask, background views never queue up in
        front of their clicks, and what a visitor asked for last is what gets computed."""
        with self._lock:
            self._next_view = (list(model_keys), index, shift)
            if self._prefetching:
                return
            self._prefetching = True
        self._prefetch_next()

    def _prefetch_next(self, finished: Future | None = None) -> None:
        if finished is not None and finished.exception() is not None:
            log.warning("prefetching a view failed (the click that needs it will say why): %r", finished.exception())
        with self._lock:
            view, self._next_view = self._next_view, None
            self._prefetching = view is not None
        if view is not None:
            self._compute.submit(_on_threads, CALL_THREADS, self._explorer.prefetch, view, {}).add_done_callback(
                self._prefetch_next)

    def preload(self, model_keys: Sequence[str], scenes: Sequence[int] = ()) -> Future:
        """Queue :meth:`Explorer.preload` of ``model_keys`` on the compute thread, then the views of ``scenes``
        through them (:meth:`Explorer.prefetch`), and return at once. Each view is its own task, queued when
        the one before ends, so a visitor's click waits behind one at most. The future is done when the
        last of them is."""
        done: Future = Future()
        chain = [(self._explorer.preload, (list(model_keys),))]
        chain += [(self._explorer.prefetch, (list(model_keys), i)) for i in scenes]

        def next_task(finished: Future | None = None) -> None:
            if finished is not None and finished.exception() is not None:
                log.warning("preloading Explore failed (the click that needs it will say why): %r",
                            finished.exception())
            if not chain:
                done.set_result(None)
                return
            fn, args = chain.pop(0)
            self._compute.submit(_on_threads, CALL_THREADS, fn, args, {}).add_done_callback(next_task)

        next_task()
        return done


# ---------------------------------------------------------------------------------------------------
# Sharing the machine: one lab trains at a time, and a lab gives way to Explore and fine-tuning (the lab,
# Explore and the fine-tune all use these)
# ---------------------------------------------------------------------------------------------------
class TrainingSlot:
    """Held by the one lab that trains now; other labs wait (with a message) until it is free."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.owner: str | None = None

    def acquire(self, owner: str, timeout: float = 0.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self.owner in (None, owner):
                    self.owner = owner
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def release(self, owner: str) -> None:
        with self._lock:
            if self.owner == owner:
                self.owner = None


class Foreground:
    """Counts requests that must not wait behind a lab (Explore clicks); labs pause while any is active."""

    def __init__(self) -> None:
        self._n = 0
        self._cond = threading.Condition()

    @contextmanager
    def active(self) -> Iterator[None]:
        with self._cond:
            self._n += 1
        try:
            yield
        finally:
            with self._cond:
                self._n -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float = 2.0) -> None:
        """Block while foreground work runs (at most ``timeout`` s, so a lab is never starved for good)."""
        with self._cond:
            self._cond.wait_for(lambda: self._n == 0, timeout=timeout)


FOREGROUND = Foreground()
SLOT = TrainingSlot()
Compute = Callable[..., Any]     # runs fn(*args, **kwargs) somewhere (the app: its ComputeThread) -> result


def direct(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """A :data:`Compute` that runs ``fn`` in the calling thread."""
    return fn(*args, **kwargs)
