"""Start-up time: ``python app.py`` against a bare Gradio app with one textbox, side by side.

Each round starts both (in alternating order, one at a time), measures the seconds from the process's
start until ``GET /`` answers HTTP 200, and stops it. Prints each pair, the medians and their ratio (the
goal: the app ready within 1.5× the bare app's time). Other work on the machine slows both alike, which is
why the runs are paired; say what else was running when you quote a figure.

``--first-view`` also opens the page in Chromium (Playwright) as soon as the app answers, and times the
start until Explore's first view (the scene and both models' panels) shows: what a user who opens the app
at once waits. ``--also DIR`` adds ``app.py`` of another checkout (e.g. a ``git worktree`` of an older
commit) to every round, so two versions are compared under the same load.

    python -m bench.bench_start [--rounds 4] [--first-view] [--also /tmp/gioada-old]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.bench_browser import ARGS, CHROMIUM, PANEL_IMAGES

ROOT = Path(__file__).resolve().parent.parent
BARE = ("import gradio as gr\n"
        "with gr.Blocks() as demo:\n"
        "    gr.Textbox()\n"
        "demo.launch(server_name='127.0.0.1', server_port={port}, ssr_mode=False)\n")
# The first view: the scene's title and every panel of both models, each image decoded.
FIRST_VIEW = ("() => { const t = document.querySelector('#scene-title');"
              f" const imgs = [...document.querySelectorAll('{PANEL_IMAGES}')];"
              " return !!t && t.innerText.length > 0 && imgs.length >= 7"
              " && imgs.every(e => e.complete && e.naturalWidth > 0); }")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_ready(cmd: list[str], port: int, timeout: float, cwd: Path = ROOT,
                  page: Any = None) -> tuple[float, float | None]:
    """Seconds from starting ``cmd`` until http://127.0.0.1:port/ answers 200, and (given a Playwright
    ``page``) until the page's first Explore view shows; the process is then stopped."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[1:]} exited with {proc.returncode}:\n{proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{cmd[1:]} was not ready after {timeout:.0f} s")
        ready = time.perf_counter() - t0
        if page is None:
            return ready, None
        page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
        page.wait_for_function(FIRST_VIEW, timeout=timeout * 1000, polling="raf")
        return ready, time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4, help="paired runs (each starts every app once)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one start")
    p.add_argument("--first-view", action="store_true", help="also time until Explore's first view shows in Chromium")
    p.add_argument("--also", type=Path, help="also start app.py of this checkout in every round")
    args = p.parse_args()

    def run(name: str, page: Any) -> tuple[float, float | None]:
        port = free_port()
        if name == "bare":
            return time_to_ready([sys.executable, "-c", BARE.format(port=port)], port, args.timeout)
        cwd = ROOT if name == "app" else args.also.resolve()
        return time_to_ready([sys.executable, "app.py", "--port", str(port)], port, args.timeout, cwd, page)

    names = ["bare", "app"] + (["also"] if args.also else [])
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    results: dict[str, list[tuple[float, float | None]]] = {n: [] for n in names}
    with contextlib.ExitStack() as stack:
        page = None
        if args.first_view:
            from playwright.sync_api import sync_playwright
            browser = stack.enter_context(sync_playwright()).chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for i in range(args.rounds):
            order = names if i % 2 == 0 else names[::-1]      # alternate, so none always runs first
            for name in order:
                results[name].append(run(name, page if name != "bare" else None))
            print(f"round {i + 1}: " + ", ".join(f"{n} {_fmt(results[n][-1])}" for n in names)
                  + f"; ready ratio {results['app'][-1][0] / results['bare'][-1][0]:.2f}", flush=True)
    bare_med = statistics.median(r for r, _ in results["bare"])
    for n in names[1:]:
        ready = [r for r, _ in results[n]]
        ratios = [a / b for (b, _), (a, _) in zip(results["bare"], results[n])]
        line = (f"{n}: ready median {statistics.median(ready):.2f} s against bare Gradio {bare_med:.2f} s; "
                f"median of paired ratios {statistics.median(ratios):.2f} (goal <= 1.5)")
        if args.first_view:
            line += f"; first view median {statistics.median(v for _, v in results[n]):.2f} s"
        print(line)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def _fmt(result: tuple[float, float | None]) -> str:
    ready, view = result
    return f"{ready:.2f} s" + (f" (first view {view:.2f} s)" if view is not None else "")


if __name__ == "__main__":
    main()
