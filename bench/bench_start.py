"""Start-up time: ``python app.py`` against a bare Gradio app with one textbox, side by side.

Each round starts both (in alternating order, one at a time), measures the seconds from the process's
start until ``GET /`` answers HTTP 200, and stops it. Prints each pair, the medians and their ratio (the
goal: the app ready within 1.5× the bare app's time). Other work on the machine slows both alike, which is
why the runs are paired; say what else was running when you quote a figure.

    python bench/bench_start.py [--rounds 4]
"""
from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
BARE = ("import gradio as gr\n"
        "with gr.Blocks() as demo:\n"
        "    gr.Textbox()\n"
        "demo.launch(server_name='127.0.0.1', server_port={port}, ssr_mode=False)\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_ready(cmd: list[str], port: int, timeout: float) -> float:
    """Seconds from starting ``cmd`` until http://127.0.0.1:port/ answers 200; the process is then stopped."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[1:]} exited with {proc.returncode}:\n{proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{cmd[1:]} was not ready after {timeout:.0f} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4, help="paired runs (each starts both apps once)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one start")
    args = p.parse_args()

    def bare() -> float:
        port = free_port()
        return time_to_ready([sys.executable, "-c", BARE.format(port=port)], port, args.timeout)

    def app() -> float:
        port = free_port()
        return time_to_ready([sys.executable, "app.py", "--port", str(port)], port, args.timeout)

    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    pairs = []
    for i in range(args.rounds):
        order = (bare, app) if i % 2 == 0 else (app, bare)     # alternate, so neither always runs second
        times = {f.__name__: f() for f in order}
        pairs.append((times["bare"], times["app"]))
        print(f"round {i + 1}: bare Gradio {times['bare']:.2f} s, app.py {times['app']:.2f} s, "
              f"ratio {times['app'] / times['bare']:.2f}")
    bare_med, app_med = (statistics.median(x) for x in zip(*pairs))
    ratios = [a / b for b, a in pairs]
    print(f"median: bare Gradio {bare_med:.2f} s, app.py {app_med:.2f} s; ratio of medians {app_med / bare_med:.2f}, "
          f"median of paired ratios {statistics.median(ratios):.2f} (goal <= 1.5)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
