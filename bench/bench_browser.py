"""What a user feels in Chromium (Playwright): Explore's click latency, and what watching a run costs.

``explore``: the app (shipped models, two compared) in this process, started as ``app.py`` starts it (the
gallery's views computed once the page is served, ``app.warm_up``; the clicks start when it is done, and
it says how long that was; ``--cold``: no warm-up, so every scene's first click computes its view); each
click on a gallery scene is
timed until the scene's title and every panel image (all of them new, decoded) show in the page, two ways:
in the page, from the click event to the animation frame that finds every panel shown (what the user
waits), and from Python, from Playwright's ``click()`` call until its wait returns (which adds Playwright's
checks before it clicks and its round trips, about 50-100 ms). Prints every click and the medians.
``--typed``: scene numbers 101-106 typed in the "Scene #" box and Run clicked instead (scenes no warm-up
computes; the app computes a number's view while it is typed, so with ``--pause`` Run finds it done). ``--random``: the "Random scene" button clicked
instead, timed until the title names a scene other than the last and every panel is new (the app draws
Random's next number one click ahead and computes its view in the background).
``--pause S``: seconds between a click's answer and the next click (a person looks at the result; 0 by default).

``watched``: each round runs a fine-tune from the Fine-tune tab watched in Chromium to its end, then the
same run on the command line (the command the app saved in the run's run.json: same settings, native
frame and crops). Both steps/s come from run.json, timed alike by ``train``. Prints both and their ratio
(the goal: watching costs nothing, ratio >= 0.85). Other work on the machine slows both; say what else was
running when you quote a figure.

``upload``: a 12-megapixel JPEG (4000×3000, as ``bench/bench_upload.py`` makes it) chosen in Explore's upload
button, timed from Playwright's ``set_input_files`` call until the title names the photo and every panel of
both models shows (the browser's upload included), against a 400×300 JPEG in alternating rounds.

    python -m bench.bench_browser explore [--clicks 10] [--cold | --typed | --random] [--pause S]
    python -m bench.bench_browser upload [--rounds 3]
    python -m bench.bench_browser watched [--steps 60] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PANELS = ("#scene-strip", "#a-slider-translation", "#a-slider-prediction", "#a-panels", "#b-slider-translation",
          "#b-slider-prediction", "#b-panels")
PANEL_IMAGES = ", ".join(f"{s} img" for s in PANELS)    # CSS selector of every panel's images
UPLOAD_IMAGES = ", ".join(f"{s} img" for s in PANELS if "translation" not in s)   # a photo has no source


def _serve(**kw):
    import app
    demo = app.build_demo(**kw)
    _, url, _ = app.launch(demo, port=None, prevent_thread_lock=True, quiet=True)
    return demo, url


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def explore(clicks: int, cold: bool = False, typed: bool = False, random: bool = False, pause: float = 0.0) -> None:
    from playwright.sync_api import sync_playwright
    import app
    demo, url = _serve()
    warmed = None if cold else app.warm_up(demo)
    # n: the scene whose title is awaited, or null (Random) for any scene but the last one shown (title old_title)
    ready = ("([n, old, old_title]) => { const t = document.querySelector('#scene-title');"
             " if (!t || (n === null ? t.innerText === old_title : !t.innerText.includes('scene #' + n + ' ')))"
             " return false;"
             f" const imgs = [...document.querySelectorAll('{PANEL_IMAGES}')];"
             " if (!(imgs.length >= 7 && imgs.every(e => e.complete && e.naturalWidth > 0 && !old.includes(e.src))))"
             " return false; window.gioReady = performance.now(); return true; }")
    times, in_page, new, cached, first_new = [], [], [], [], []
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="load")
        page.wait_for_function("document.querySelector('#a-panels img') !== null", timeout=120_000)
        if warmed is not None:         # clicks start once the gallery's views are computed
            t = time.perf_counter()
            warmed.result(timeout=120)
            print(f"warm-up done {time.perf_counter() - t:.1f} s after the first view showed", flush=True)
        # From each click, a frame loop notes when the scene's strip (the first panel) shows the new scene.
        page.evaluate("document.addEventListener('click', e => { window.gioClick = e.timeStamp; window.gioFirst = null;"
                      " const old = document.querySelector('#scene-strip img')?.src;"
                      " const f = () => { const i = document.querySelector('#scene-strip img');"
                      " if (i && i.src !== old && i.complete && i.naturalWidth > 0) window.gioFirst = performance.now();"
                      " else requestAnimationFrame(f); }; requestAnimationFrame(f); }, true)")
        seen = {0}                         # the first view's scene (Explore opens on scene 0)
        for i in range(clicks + 1):
            n = None if random else 101 + i % 6 if typed else [1, 2, 3, 4, 5, 0][i % 6]
            old = page.evaluate(f"[...document.querySelectorAll('{PANEL_IMAGES}')].map(e => e.src)")
            old_title = page.locator("#scene-title").inner_text()
            if typed:
                page.get_by_label("Scene #").fill(str(n))
            time.sleep(pause)
            t = time.perf_counter()
            button = page.get_by_role("button", name="Random scene") if random else \
                page.locator("#explore-run" if typed else "#scene-gallery button").nth(0 if typed else n)
            button.click()
            page.wait_for_function(ready, arg=[n, old, old_title], timeout=60_000, polling="raf")
            ms = 1000 * (time.perf_counter() - t)
            if random:
                n = int(page.get_by_label("Scene #").input_value())
            page_ms = page.evaluate("window.gioReady - window.gioClick")
            first_ms = page.evaluate("window.gioFirst === null ? null : window.gioFirst - window.gioClick")
            kind = "seen" if n in seen else "new"
            seen.add(n)
            if i:                          # the first click warms the page's image pipeline
                times.append(ms)
                in_page.append(page_ms)
                (cached if kind == "seen" else new).append(page_ms)
                if kind == "new" and first_ms is not None:
                    first_new.append(first_ms)
                strip = f"; its strip shown after {first_ms:.0f} ms" if first_ms is not None else ""
                print(f"click {i}: scene {n} ({kind}): {page_ms:.0f} ms in the page ({ms:.0f} ms from Playwright's "
                      f"call){strip}", flush=True)
        browser.close()
    demo.close()
    print(f"explore click -> every panel updated in Chromium: median {statistics.median(in_page):.0f} ms in the "
          f"page, from the click event (min {min(in_page):.0f}, max {max(in_page):.0f}); "
          f"{statistics.median(times):.0f} ms from Playwright's click() call ({len(times)} clicks)")
    first = ("drawn and computed one click ahead" if random else f"typed, Run clicked {pause:g} s later" if typed
             else "computed on the click" if cold else "prefetched by the warm-up")
    for name, xs in ((f"a scene not clicked before ({first})", new),
                     ("a scene clicked before (the view cache)", cached),
                     ("a scene not clicked before, its first panel (the strip)", first_new)):
        if xs:
            print(f"  {name}: median {statistics.median(xs):.0f} ms in the page ({len(xs)} clicks)")


def upload(rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    from bench.bench_upload import photo
    demo, url = _serve()
    times: dict[str, list[float]] = {"4000×3000": [], "400×300": []}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        files = {}
        for size in times:
            w, h = map(int, size.split("×"))
            files[size] = Path(tmp) / f"photo-{w}.jpg"
            files[size].write_bytes(photo(w, h))
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="load")
        page.wait_for_function("document.querySelector('#a-panels img') !== null", timeout=120_000)
        shown = ("([title, old]) => { if (!document.querySelector('#scene-title')?.innerText.includes(title))"
                 f" return false; const imgs = [...document.querySelectorAll('{UPLOAD_IMAGES}')];"
                 " return imgs.length >= 7 && imgs.every(e => e.complete && e.naturalWidth > 0 && !old.includes(e.src)); }")
        for r in range(rounds + 1):
            for size, path in files.items():
                old = page.evaluate(f"[...document.querySelectorAll('{PANEL_IMAGES}')].map(e => e.src)")
                t = time.perf_counter()
                page.locator("input[type=file]").first.set_input_files(str(path))
                page.wait_for_function(shown, arg=[f"Your image ({size}", old], timeout=60_000, polling="raf")
                ms = 1000 * (time.perf_counter() - t)
                if r:                          # the first round warms the page's upload path
                    times[size].append(ms)
                    print(f"round {r}: {size} JPEG ({path.stat().st_size / 1e6:.1f} MB): every panel shown after "
                          f"{ms:.0f} ms", flush=True)
        browser.close()
    demo.close()
    for size, xs in times.items():
        print(f"{size} JPEG uploaded in Chromium -> its panels shown: median {statistics.median(xs):.0f} ms "
              f"({len(xs)} rounds)")


def _cli(command: str, out: Path) -> float:
    """steps/s of ``command`` (a run's reproducing command) run on the command line, writing to ``out``."""
    args = shlex.split(command)
    args[args.index("--out") + 1] = str(out)
    assert args[:3] == ["python", "-m", "gioada"], command
    subprocess.run([sys.executable, *args[1:]], check=True, capture_output=True)
    return json.loads((out / "run.json").read_text())["steps_per_second"]


def _watched(url: str, manager) -> tuple[float, str]:
    """Start the Fine-tune tab's run in Chromium and watch it to the end: (steps/s, the run's CLI command).

    Both figures come from the saved run's run.json, timed by the same code as the CLI's (train's timer:
    the training loop from its start, validation excluded), so the two are measured alike."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Fine-tune").click()
        page.get_by_role("button", name="Start fine-tuning").click()
        page.wait_for_selector("#ft-progress >> text=/Finished|Stopped|failed|diverged/", timeout=3_600_000)
        text = page.inner_text("#ft-progress")
        browser.close()
    if "Finished" not in text:
        raise SystemExit(f"the watched run did not finish: {text!r}")
    info = json.loads((manager.current.out_dir / "run.json").read_text())
    return info["steps_per_second"], info["command"]


def watched(steps: int, batch: int, height: int, rounds: int) -> None:
    from gioada.app.finetune import FinetuneParams
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        defaults = FinetuneParams(steps=steps, batch_size=batch, height=height)
        demo, url = _serve(runs_dir=Path(tmp) / "runs", eval_scenes=4, defaults=defaults)
        cli, web = [], []
        for r in range(rounds):
            # The app's run first: its run.json holds the command that reproduces it on the command line.
            rate, command = _watched(url, demo.gioada["finetune"])
            web.append(rate)
            cli.append(_cli(command, Path(tmp) / f"cli-{r}"))
            print(f"round {r + 1}: watched in Chromium {web[-1]:.2f} steps/s, CLI {cli[-1]:.2f} steps/s, "
                  f"ratio {web[-1] / cli[-1]:.2f}", flush=True)
        demo.close()
    c, w = statistics.median(cli), statistics.median(web)
    print(f"CLI command (same settings): {command}")
    print(f"watched/CLI steps/s: {w:.2f}/{c:.2f} = {w / c:.2f} (goal >= 0.85; {steps} steps, batch {batch}, "
          f"{height}x{3 * height} crops); median of paired ratios "
          f"{statistics.median(a / b for a, b in zip(web, cli)):.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    e = sub.add_parser("explore")
    e.add_argument("--clicks", type=int, default=10)
    e.add_argument("--cold", action="store_true", help="no warm-up: every scene's first click computes its view")
    e.add_argument("--typed", action="store_true", help="type scene numbers and click Run instead of the gallery")
    e.add_argument("--random", action="store_true", help="click Random scene instead of the gallery")
    e.add_argument("--pause", type=float, default=0.0, help="seconds between an answer and the next click")
    u = sub.add_parser("upload")
    u.add_argument("--rounds", type=int, default=3)
    w = sub.add_parser("watched")
    w.add_argument("--steps", type=int, default=60)
    w.add_argument("--batch-size", type=int, default=4)
    w.add_argument("--height", type=int, default=64)
    w.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    if a.what == "explore":
        explore(a.clicks, a.cold, a.typed, a.random, a.pause)
    elif a.what == "upload":
        upload(a.rounds)
    else:
        watched(a.steps, a.batch_size, a.height, a.rounds)


if __name__ == "__main__":
    main()
