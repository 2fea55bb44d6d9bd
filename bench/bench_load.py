"""Many users at once: N clients explore while a default fine-tuning run trains.

Serves the app on the shipped models (runs saved to a temporary folder), starts the Fine-tune tab's
default run through the API, then has N clients each call /explore once, all at the same moment, and
prints their latencies and how fast the run trained during the burst compared with just before it
(issue 13: the run must keep at least 50% of its idle speed). Also checks that a second Start is refused
while the run trains, and times the default run itself.

    python -m bench.bench_load [--clients 16]      # from the checkout's root: it imports app.py
    python -m bench.bench_load --explorers-unlimited   # explorers in their own threads, beside the run
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from gradio_client import Client

import app
from gioada.app.finetune import FinetuneParams
from gioada.app.serving import OnComputeThread
from gioada.inference import pick_device


def burst(url: str, n: int) -> None:
    """The clients' side: connect ``n`` clients, say "ready", wait for "go" on stdin, then have all of them
    call /explore at once; print their answers as one JSON line: [seconds, "scene" | "busy" | "empty" | error]
    each ("busy": the app's "busy, try again" refusal)."""
    clients = [Client(url, verbose=False) for _ in range(n)]
    print("ready", flush=True)
    sys.stdin.readline()
    answers: list[list] = [[None, "empty"]] * n
    barrier = threading.Barrier(n)

    def explore(i: int) -> None:
        barrier.wait()
        t = time.perf_counter()
        try:
            out = clients[i].predict("gioada", "source-only", i, 1.0, api_name="/explore")
            kind = "scene" if out and out[1] else "empty"
        except Exception as e:  # noqa: BLE001 - gradio_client raises AppError with the app's message
            kind = "busy" if "busy" in str(e) else str(e).splitlines()[0][:80]
        answers[i] = [time.perf_counter() - t, kind]

    threads = [threading.Thread(target=explore, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(answers), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--burst", metavar="URL", help=argparse.SUPPRESS)   # the clients' process (see burst())
    p.add_argument("--idle-seconds", type=float, default=20.0, help="how long the run's idle speed is measured")
    p.add_argument("--explorers-unlimited", action="store_true",
                   help="explorers compute in their own threads beside the run (not on the compute thread), "
                        "for comparison")
    a = p.parse_args()
    if a.burst:
        return burst(a.burst, a.clients)
    if a.explorers_unlimited:
        OnComputeThread.scene = lambda self, *args, **kw: self._explorer.scene(*args, **kw)
        OnComputeThread.upload = lambda self, *args, **kw: self._explorer.upload(*args, **kw)
    defaults = FinetuneParams(height=64, steps=20_000)   # the Fine-tune tab's size, long enough to outlast the burst
    with tempfile.TemporaryDirectory(prefix="gioada-load-") as runs:
        demo = app.build_demo(app.ASSETS, runs, defaults=defaults)
        _, url, _ = app.launch(demo, port=None, prevent_thread_lock=True, quiet=True)
        manager = demo.gioada["finetune"]
        trainer = Client(url, verbose=False)
        start = time.perf_counter()
        job = trainer.submit(defaults.lam_input, defaults.lam_output, defaults.lam_depth, defaults.lr, defaults.steps,
                             defaults.batch_size, defaults.height, defaults.seed, defaults.start_from, "load-bench",
                             api_name="/finetune")
        while not (manager.busy() and manager.current.snapshot().step >= 1):
            time.sleep(0.2)
        try:
            trainer.predict(*[0.1, 0.02, 0.5, 1e-3, 2, 2, 32, 0, "", "second"], api_name="/finetune")
            refused = "NO: a second run started"
        except Exception as e:  # noqa: BLE001 - gradio_client raises AppError with the app's message
            refused = f"refused: {str(e).splitlines()[0][:80]}"

        def step() -> int:
            return manager.current.snapshot().step

        # The clients live in another process, as browsers do: their own work shares the CPU, not the GIL.
        crowd = subprocess.Popen([sys.executable, "-m", "bench.bench_load", "--burst", url, "--clients",
                                  str(a.clients)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert crowd.stdout.readline().strip() == "ready"
        s0, t0 = step(), time.perf_counter()
        time.sleep(a.idle_seconds)
        s1, t1 = step(), time.perf_counter()
        idle_rate = (s1 - s0) / (t1 - t0)
        crowd.stdin.write("go\n")
        crowd.stdin.flush()
        answers: list[list] = json.loads(crowd.stdout.readline())
        crowd.wait()
        s2, t2 = step(), time.perf_counter()
        burst_rate = (s2 - s1) / (t2 - t1)
        during = manager.busy()
        # A second burst, and Stop pressed (through the API, as the button does) one second into it.
        crowd = subprocess.Popen([sys.executable, "-m", "bench.bench_load", "--burst", url, "--clients",
                                  str(a.clients)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert crowd.stdout.readline().strip() == "ready"
        crowd.stdin.write("go\n")
        crowd.stdin.flush()
        time.sleep(1.0)
        pressed = time.perf_counter()
        Client(url, verbose=False).predict(api_name="/stop")
        while manager.current.snapshot().state == "training" and time.perf_counter() - pressed < 120:
            time.sleep(0.02)
        stop_seconds = time.perf_counter() - pressed      # training stopped: it then evaluates and saves
        while manager.busy() and time.perf_counter() - pressed < 300:
            time.sleep(0.05)
        saved_seconds = time.perf_counter() - pressed
        crowd.stdout.readline()
        crowd.wait()
        summary = job.result(timeout=900)[4]          # the "before -> after" result text
        train_seconds = time.perf_counter() - start
        demo.close()

    every = [t for t, kind in answers if kind in ("scene", "busy")]
    scenes = [t for t, kind in answers if kind == "scene"]
    busy = [t for t, kind in answers if kind == "busy"]
    other = [kind for _, kind in answers if kind not in ("scene", "busy")]
    device = pick_device()
    print(f"# {a.clients} clients explore (2 models, each at its training size) while the default fine-tune trains; "
          f"{device.type.upper()}, {os.cpu_count()} cores")
    print(f"answered: {len(scenes)} scenes, {len(busy)} 'busy, try again', {len(other)} other {other[:3]} "
          f"(training still running when the last answered: {during})")
    for name, xs in (("every answer", every), ("scenes", scenes), ("busy", busy)):
        if xs:
            q = statistics.quantiles(xs, n=10) if len(xs) > 1 else xs * 9
            print(f"latency, {name}: median {statistics.median(xs):.1f} s, p90 {q[-1]:.1f} s, max {max(xs):.1f} s")
    print(f"Stop pressed 1 s into a second burst: training stopped {stop_seconds:.2f} s later (then the run evaluated "
          f"and saved: done {saved_seconds:.1f} s after the press)")
    print(f"training speed: idle {idle_rate:.2f} steps/s, during the burst {burst_rate:.2f} steps/s over {t2 - t1:.0f} s "
          f"= {burst_rate / max(idle_rate, 1e-9):.0%} of idle (explorers "
          f"{'unlimited' if a.explorers_unlimited else 'give way to training'})")
    print(f"second Start while training: {refused}")
    print(f"fine-tune at {defaults.height}×{defaults.width}, batch {defaults.batch_size}, from scratch, stopped after the "
          f"burst: {train_seconds:.0f} s in all")
    print(" ".join(html.unescape(re.sub(r"<[^>]+>|[*#]", " ", summary)).split())[:200])


if __name__ == "__main__":
    main()
