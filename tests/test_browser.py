"""Real-browser tests: Debian's chromium, driven by Playwright. One loads the app, explores a scene, runs a
tiny fine-tune and checks that the images and the plots appear; one walks through the live lab's lesson
(Play, Pause, Step D, Step G, a failure-mode preset). Screenshots are saved for people to look at
(GIOADA_SCREENSHOTS=/tmp/shots keeps them).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make browser, or apt-get install chromium) "
                "to run the browser test", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

import app
from gioada import DataConfig, ModelConfig, RunConfig
from gioada.app.finetune import FinetuneParams
from gioada.train import train

# Chromium's background services try to reach Google; the machine's network is closed.
pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting.*", "ignore:The copy keyword is deprecated"),
              pytest.mark.slow]     # `make test-fast` leaves it out; `make test` runs it

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _tiny_run(path: Path, lam: float) -> None:
    cfg = RunConfig(model=ModelConfig(task_width=8, transform_width=8, disc_width=8, lam_input=lam, lam_output=lam),
                    data=DataConfig(height=32, width=64, batch_size=2, val_scenes=2), steps=2, val_every=2)
    train(cfg, path, progress=False, eval_scenes=2)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    _tiny_run(root / "assets" / "gioada", 0.1)
    _tiny_run(root / "assets" / "source-only", 0.0)
    demo = app.build_demo(root / "assets", root / "runs", eval_scenes=2,
                          defaults=FinetuneParams(steps=3, batch_size=2, height=32))
    _, local_url, _ = app.launch(demo, port=None, prevent_thread_lock=True, quiet=True)
    yield local_url
    demo.close()


@contextlib.contextmanager
def _chromium_page(url: str, height: int) -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page on the app, loaded, and the JavaScript errors it raises."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="load")
            yield page, errors
        finally:
            browser.close()


def test_explore_and_finetune_in_chromium(url, tmp_path):
    with _chromium_page(url, 1000) as (page, errors):
        # Explore: the page runs one scene on load; then pick another scene and run again.
        page.wait_for_function("document.querySelector('#a-panels img') !== null", timeout=60_000)
        page.locator("#scene-gallery button").nth(2).click()
        page.wait_for_selector("text=Held-out scene #2", timeout=60_000)
        for sel in ("#scene-strip", "#a-slider-translation", "#a-slider-prediction", "#a-panels",
                    "#b-slider-prediction", "#b-panels"):
            page.wait_for_function(
                f"[...document.querySelectorAll('{sel} img')].some(e => e.complete && e.naturalWidth > 0)",
                timeout=30_000)
        assert page.get_by_text("mIoU on target").first.is_visible()
        page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)

        # Fine-tune: a tiny run (the app was built with 3-step defaults) streams curves and a preview.
        page.get_by_role("tab", name="Fine-tune").click()
        # Before a run, each plot says what will appear, with no axis of a lone 0.000000 tick.
        for sel in ("#loss-plot", "#conf-plot"):
            page.wait_for_selector(f"{sel} >> text=empty until a run's first step", timeout=30_000)
            assert "0.000000" not in page.inner_text(sel)
        page.get_by_role("button", name="Start fine-tuning").click()
        page.wait_for_selector("#ft-progress >> text=Finished 3 steps", timeout=120_000)
        page.wait_for_function("[...document.querySelectorAll('#ft-preview img')]"
                               ".some(e => e.complete && e.naturalWidth > 0)", timeout=30_000)
        # The browser draws the curves; the legends name the series that appeared after the first (empty) data.
        for sel, names in (("#loss-plot", ["seg", "D_in"]),
                           ("#conf-plot", ["D_in · target", "chance (50%)"])):
            page.wait_for_function(
                "([sel, names]) => { const svg = document.querySelector(sel + ' svg');"
                " return svg !== null && names.every(n => svg.textContent.includes(n)); }",
                arg=[sel, names], timeout=30_000)
        assert "points" in page.inner_text("#ft-result")
        shot = tmp_path / "finetune.png"
        page.screenshot(path=str(shot), full_page=True)
        assert not errors, errors
    keep = os.environ.get("GIOADA_SCREENSHOTS")  # e.g. GIOADA_SCREENSHOTS=/tmp/shots to keep them
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name in ("explore.png", "finetune.png"):
            shutil.copy(tmp_path / name, Path(keep) / name)
    print(f"screenshots: {tmp_path / 'explore.png'}, {shot}")


CARD = "document.querySelector('#lab-card')"
TRANSLATION_HASH = """async () => {
    const img = document.querySelector('#lab-translation img');
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    return bytes.reduce((h, x) => (h * 31 + x) >>> 0, 7);
}"""


def _card(page) -> dict:
    return page.evaluate(f"({{...{CARD}.dataset}})")


def _keep(tmp_path: Path, *names: str) -> None:
    keep = os.environ.get("GIOADA_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(tmp_path / name, Path(keep) / name)


def test_live_lab_lesson_in_chromium(url, tmp_path):
    with _chromium_page(url, 1400) as (page, errors):
        page.get_by_role("tab", name="Learn").click()
        page.locator("#lab-reset").click()
        page.wait_for_function(f"{CARD} && {CARD}.dataset.steps === '0'", timeout=60_000)

        # Play a few seconds, then Pause: the steps stop.
        page.locator("#lab-play").click()
        page.wait_for_function(f"{CARD} && +{CARD}.dataset.steps >= 3", timeout=60_000)
        page.locator("#lab-pause").click()
        page.wait_for_function("!document.querySelector('#lab-card-box .pending, #lab-card-box .generating')",
                               timeout=30_000)
        # The play stream has ended (no event is updating the card); the Step D below shows that the lab
        # itself stopped too: exactly one step, a D step, comes after the paused count.
        paused = _card(page)
        page.wait_for_function("document.querySelector('#lab-losses canvas, #lab-losses svg') !== null",
                               timeout=30_000)
        page.screenshot(path=str(tmp_path / "lab-played.png"), full_page=True)

        # Step D: the discriminators' bars move, G's translation does not change.
        before, image = paused, page.evaluate(TRANSLATION_HASH)
        page.locator("#lab-step-d").click()
        page.wait_for_function(f"+{CARD}.dataset.d === {int(before['d']) + 1}", timeout=60_000)
        after = _card(page)
        assert int(after["steps"]) == int(paused["steps"]) + 1, "the lab kept training after Pause"
        assert after["dinReal"] != before["dinReal"] and after["g"] == before["g"]
        assert page.evaluate(TRANSLATION_HASH) == image and float(after["change"]) == 0
        assert "did not change" in page.inner_text("#lab-card")
        page.screenshot(path=str(tmp_path / "lab-step-d.png"), full_page=True)

        # Step G: G's translation changes; D_in's verdict on the (fixed) target image does not.
        page.locator("#lab-step-g").click()
        page.wait_for_function(f"+{CARD}.dataset.g === {int(after['g']) + 1}", timeout=60_000)
        page.wait_for_function(f"async () => (await ({TRANSLATION_HASH})()) !== {image}", timeout=30_000)
        after_g = _card(page)
        assert after_g["dinReal"] == after["dinReal"] and after_g["d"] == after["d"]
        assert float(after_g["change"]) > 0

        # A failure-mode preset from the lesson: it resets the lab to its start and plays.
        page.get_by_role("button", name="D · Break it: λ_in far too large").click()
        page.wait_for_selector("#lab-lesson >> text=Fooling D_in now outweighs", timeout=60_000)
        page.wait_for_function(f"+{CARD}.dataset.steps >= 2", timeout=60_000)
        page.locator("#lab-pause").click()
        assert page.locator("#lab-status").inner_text()
        page.screenshot(path=str(tmp_path / "lab-failure.png"), full_page=True)
        assert not errors, errors
    _keep(tmp_path, "lab-played.png", "lab-step-d.png", "lab-failure.png")


@pytest.mark.parametrize("width, height", [(1440, 1000), (390, 844)])
def test_no_tab_overflows_a_desktop_or_a_phone_screen(url, tmp_path, width, height):
    """Each tab at 1440×1000 and at a phone's 390×844: nothing sticks out sideways (the page never scrolls
    horizontally) and each tab's main controls are on screen; screenshots saved for a person to look at."""
    keep = os.environ.get("GIOADA_SCREENSHOTS")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, wait_until="load")
            page.wait_for_function("document.querySelector('#a-panels img') !== null", timeout=60_000)
            for tab, control in (("Explore", "Run"), ("Fine-tune", "▶ Start fine-tuning"), ("Learn", "▶ Play")):
                page.get_by_role("tab", name=tab).click()
                button = page.get_by_role("button", name=control, exact=True)
                button.wait_for(state="visible", timeout=30_000)
                box = button.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (tab, box)
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                shot = tmp_path / f"{tab.lower()}-{width}.png"
                page.screenshot(path=str(shot), full_page=True)
                if keep:
                    Path(keep).mkdir(parents=True, exist_ok=True)
                    shutil.copy(shot, Path(keep) / shot.name)
                assert overflow <= 1, f"{tab} at {width}px is {overflow}px wider than the screen"
        finally:
            browser.close()


def _title_scene(page) -> int:
    import re
    match = re.search(r"scene #(\d+) ", page.inner_text("#scene-title"))
    return int(match.group(1)) if match else -1


def test_every_other_control_answers_in_chromium(url, tmp_path):
    """A smoke click of each control the other browser tests leave out, asserting what the user then sees."""
    from PIL import Image
    photo = tmp_path / "street.png"
    Image.new("RGB", (300, 200), (90, 120, 160)).save(photo)
    with _chromium_page(url, 1000) as (page, errors):
        page.wait_for_function("document.querySelector('#a-panels img') !== null", timeout=60_000)
        # Explore: a scene number and Enter; Random scene; an uploaded photo; Refresh model list.
        box = page.get_by_label("Scene #")
        box.fill("7")
        box.press("Enter")
        page.wait_for_selector("#scene-title >> text=scene #7 ", timeout=60_000)
        page.get_by_role("button", name="Random scene").click()
        page.wait_for_function("!document.querySelector('#scene-title').innerText.includes('scene #7 ')",
                               timeout=60_000)
        assert _title_scene(page) == int(box.input_value())          # the title names the number drawn
        page.locator("input[type=file]").first.set_input_files(str(photo))
        page.wait_for_selector("#scene-title >> text=Your image (300×200)", timeout=60_000)
        assert page.get_by_text("never saw a real photograph").first.is_visible()
        page.get_by_role("button", name="↻ Refresh model list").click()
        page.wait_for_timeout(500)
        assert not page.locator(".toast-body.error").count()

        # Fine-tune: a preset moves the sliders; Stop with no run in progress says so.
        page.get_by_role("tab", name="Fine-tune").click()
        page.get_by_label("No adaptation").check()
        page.wait_for_function("[...document.querySelectorAll('input[type=number]')]"
                               ".some(e => e.getAttribute('aria-label')?.includes('λ_in') && +e.value === 0)",
                               timeout=30_000)
        # Stop with no run training leaves the card as it was (no run yet, or the last run's end), no error.
        before = page.inner_text("#ft-progress")
        with page.expect_response(lambda r: "/gradio_api/queue/join" in r.url):
            page.get_by_role("button", name="■ Stop").click()
        page.wait_for_function("!document.querySelector('#ft-progress .pending, #ft-progress .generating')",
                               timeout=30_000)
        page.wait_for_selector("text=there is nothing to stop", timeout=30_000)
        assert page.inner_text("#ft-progress") == before and not page.locator(".toast-body.error").count()

        # Learn: a tour step opens Explore set up for it; the last opens Fine-tune on the full method.
        page.get_by_role("tab", name="Learn").click()
        page.get_by_role("button", name="2 · ", exact=False).first.click()
        page.wait_for_selector("#tour-box", state="visible", timeout=60_000)
        assert page.inner_text("#tour-box").strip()
        page.get_by_role("tab", name="Learn").click()
        page.get_by_role("button", name="Train it yourself").click()
        page.wait_for_function("[...document.querySelectorAll('input[type=radio]')]"
                               ".some(e => e.value === 'Full GIO-Ada' && e.checked)", timeout=30_000)
        # The lab: Reset, Step both (one D and one G step), a lesson step's explanation.
        page.get_by_role("tab", name="Learn").click()
        page.locator("#lab-reset").click()
        page.wait_for_function(f"{CARD} && {CARD}.dataset.steps === '0'", timeout=60_000)
        page.locator("#lab-step-both").click()
        page.wait_for_function(f"{CARD}.dataset.steps === '1' && {CARD}.dataset.d === '1' && "
                               f"{CARD}.dataset.g === '1'", timeout=60_000)
        page.locator("#lab-lesson-0").click()
        page.wait_for_selector("#lab-lesson >> text=Step D", timeout=60_000)
        page.screenshot(path=str(tmp_path / "controls.png"), full_page=True)
        assert not errors, errors
    _keep(tmp_path, "controls.png")
