"""Reliability under hostile or unlucky use (issue 13): bounded memory per upload, no external decoders,
Host check, refusal of runs that cannot fit, clean recovery after a kill, clean messages, Stop while
preparing."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from PIL import EpsImagePlugin, Image

from gioada.app.uploads import load_upload

ROOT = Path(__file__).resolve().parent.parent


def _image_bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------
# 1. Memory per upload is bounded whatever the format
# ---------------------------------------------------------------------------------------------------
# Runs in a fresh interpreter: builds the file, then resets the kernel's peak-RSS mark (clear_refs 5) and
# prints how far load_upload raised the peak above the resident memory before it. RSS, not tracemalloc:
# Pillow decodes with malloc, which tracemalloc does not see.
_PEAK = textwrap.dedent("""
    import io, sys
    sys.path.insert(0, {root!r})
    import numpy as np
    from PIL import Image
    from gioada.app.uploads import load_upload

    def kb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1])

    kind = sys.argv[1]
    buf = io.BytesIO()
    if kind == "png16":
        Image.new("I;16", (7000, 7000), 1000).save(buf, "PNG")
    elif kind == "tiff-float":
        Image.new("F", (7000, 7000), 0.5).save(buf, "TIFF", compression="tiff_adobe_deflate")
    elif kind == "png-rgba":
        Image.new("RGBA", (7000, 7000), (10, 20, 30, 40)).save(buf, "PNG")
    data = buf.getvalue()
    del buf
    load_upload({small!r})                              # warm up: plugins, numpy paths
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                    # the peak (VmHWM) restarts from the current RSS
    base = kb("VmRSS")
    image = load_upload(data)
    print(len(data), (kb("VmHWM") - base) * 1024, image.shape)
""")


def _peak_upload_memory(kind: str) -> tuple[int, int]:
    small = _image_bytes(Image.new("I;16", (64, 64), 1000), "PNG")
    code = _PEAK.format(root=str(ROOT), small=small)
    out = subprocess.run([sys.executable, "-c", code, kind], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    size, peak, _ = out.stdout.split(maxsplit=2)
    return int(size), int(peak)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak-RSS reset")
@pytest.mark.parametrize("kind", ["png16", "tiff-float", "png-rgba"])
def test_upload_memory_is_bounded_whatever_the_format(kind):
    size, peak = _peak_upload_memory(kind)
    if kind == "png16":
        assert size < 200_000                           # the file: ~93 KB on disk, 49 MP
    assert peak <= 300 * 2**20, f"{kind}: decoding raised memory by {peak / 2**20:.0f} MB (budget 300 MB)"


# ---------------------------------------------------------------------------------------------------
# 2. No uploaded byte reaches an external program
# ---------------------------------------------------------------------------------------------------
def test_eps_is_refused_by_name_and_never_reaches_ghostscript(monkeypatch):
    calls = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    eps = _image_bytes(Image.new("RGB", (64, 64), (200, 0, 0)), "EPS")
    with pytest.raises(ValueError, match="EPS files are not accepted"):
        load_upload(eps)
    assert calls == []


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA", "PCX"])
def test_formats_outside_the_allow_list_are_refused_by_name(fmt):
    data = _image_bytes(Image.new("RGB", (64, 64), (0, 90, 200)), fmt)
    with pytest.raises(ValueError, match=f"{fmt} files are not accepted.*PNG, JPEG, WebP, GIF, BMP or TIFF"):
        load_upload(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_allowed_formats_still_load(fmt):
    image = load_upload(_image_bytes(Image.new("RGB", (64, 48), (0, 90, 200)), fmt))
    assert image.shape == (48, 64, 3)


# ---------------------------------------------------------------------------------------------------
# 3. Requests for a foreign Host are refused (DNS rebinding)
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bare_app(tmp_path_factory):
    """The app with no models installed (fast to build), served on localhost with one extra allowed name."""
    import app
    root = tmp_path_factory.mktemp("bare")
    demo = app.build_demo(root / "assets", root / "runs", eval_scenes=2)
    _, url, _ = app.launch(demo, port=None, prevent_thread_lock=True, quiet=True, hosts=["lab.example.org"])
    yield demo, url
    demo.close()


def test_a_foreign_host_is_refused(bare_app):
    import httpx
    _, url = bare_app
    port = httpx.URL(url).port
    for path in ("", "config", "gradio_api/info"):
        r = httpx.get(url + path, headers={"Host": "evil.example"})
        assert r.status_code == 403, (path, r.status_code)
        assert "does not answer to the host 'evil.example'" in r.text and "--allowed-hosts" in r.text
    r = httpx.post(url + "gradio_api/call/list_models", json={"data": []}, headers={"Host": f"evil.example:{port}"})
    assert r.status_code == 403
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "lab.example.org"):
        assert httpx.get(url + "config", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_from_flag_env_and_address(monkeypatch):
    from gioada.app.serving import HostCheck, allowed_hosts, host_name
    monkeypatch.setenv("GIOADA_ALLOWED_HOSTS", "Lab.Example.org, *.corp.example")
    allowed = allowed_hosts("192.168.1.5", ["extra.example"])
    check = HostCheck(None, allowed)
    for ok in ("localhost:7860", "127.0.0.1", "[::1]:7860", "192.168.1.5:7860", "extra.example",
               "lab.example.org.", "gpu.corp.example:7860"):
        assert check.allows(ok), ok
    for bad in ("evil.example", "localhost.evil.example", "corp.example.evil", "", "192.168.1.6"):
        assert not check.allows(bad), bad
    assert host_name("[::1]:80") == "::1" and host_name("::1") == "::1"


# ---------------------------------------------------------------------------------------------------
# 4. Settings that cannot fit are refused before they start
# ---------------------------------------------------------------------------------------------------
def test_a_run_that_cannot_fit_is_refused_before_it_starts(monkeypatch, tmp_path):
    import re

    import torch

    import gioada.app.finetune as ft
    from gioada.app.finetune import FinetuneManager, FinetuneParams
    from gioada.app.registry import ModelRegistry
    # The settings grew past 8 GB on the CPU: the estimate knows.
    assert ft.estimate_run_memory(64, 128, 384) > 8 * 2**30
    free = 4 * 2**30
    monkeypatch.setattr(ft, "available_memory", lambda device: free)
    manager = FinetuneManager(ModelRegistry(tmp_path / "assets", tmp_path / "runs"), eval_scenes=2,
                              accelerator="cpu")
    params = FinetuneParams.validated(batch_size=64, height=512, steps=2)
    with pytest.raises(ValueError, match="Not enough memory: batch 64 at 128×384") as e:
        manager.start(params)
    assert manager.current is None and not (tmp_path / "runs").exists()      # nothing was started
    largest = int(re.search(r"the largest batch that fits at 128×384 is (\d+)", str(e.value)).group(1))
    budget = free * ft.MEMORY_HEADROOM
    assert ft.estimate_run_memory(largest, 128, 384) <= budget < ft.estimate_run_memory(largest + 1, 128, 384)
    height = int(re.search(r"at batch 64, image height (\d+)", str(e.value)).group(1))
    assert ft.estimate_run_memory(64, height, 3 * height) <= budget
    ft.check_memory(largest, 128, 384, torch.device("cpu"))                   # what it names does fit


def test_free_memory_is_read_from_the_machine():
    import torch

    from gioada.app.finetune import available_memory
    free = available_memory(torch.device("cpu"))
    assert 0 < free <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# ---------------------------------------------------------------------------------------------------
# 6. Clean recovery after a kill
# ---------------------------------------------------------------------------------------------------
_KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import gioada.checkpoint as ck
    from gioada import DataConfig, ModelConfig, RunConfig
    cfg = RunConfig(model=ModelConfig(task_width=8, transform_width=8, disc_width=8), data=DataConfig())
    model = ck.build_model(cfg)
    import safetensors.torch as st                # save_run imports save_file from here when it saves
    real_save = st.save_file
    def save_then_die(state, path):
        real_save(state, path)
        os.kill(os.getpid(), signal.SIGKILL)      # killed while the run is being saved
    st.save_file = save_then_die
    ck.save_run(sys.argv[1], model, cfg)
""")


def test_a_save_killed_midway_is_cleaned_and_never_blocks_its_name(tmp_path):
    from gioada.app.finetune import FinetuneManager, _unique_dir
    from gioada.app.registry import ModelRegistry
    from gioada.checkpoint import PARTIAL
    runs = tmp_path / "runs"
    out = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(runs / "my-run")], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == -9, out.stderr[-2000:]
    left = [p.name for p in runs.iterdir()]
    assert len(left) == 1 and left[0].startswith(".my-run.") and left[0].endswith(".tmp")
    assert _unique_dir(runs, "my-run").name == "my-run"         # a leftover never reserves the name
    # A save in progress in a live process (this one) and a hidden folder the app did not make stay.
    busy = runs / ".other.abc123.tmp"
    busy.mkdir()
    (busy / PARTIAL).write_text(f'{{"pid": {os.getpid()}, "host": "{os.uname().nodename}"}}')
    (runs / ".not-ours").mkdir()
    FinetuneManager(ModelRegistry(tmp_path / "assets", runs), eval_scenes=2)      # the app starting up
    assert sorted(p.name for p in runs.iterdir()) == [".not-ours", ".other.abc123.tmp"]


# ---------------------------------------------------------------------------------------------------
# 9. Stop means stop
# ---------------------------------------------------------------------------------------------------
def _manager(tmp_path):
    from gioada.app.finetune import FinetuneManager
    from gioada.app.registry import ModelRegistry
    return FinetuneManager(ModelRegistry(tmp_path / "assets", tmp_path / "runs"), eval_scenes=2, accelerator="cpu")


TINY_RUN = dict(steps=3, batch_size=2, height=32, lam_input=0.1, lam_output=0.1)


def test_stop_while_preparing_saves_nothing(monkeypatch, tmp_path):
    import gioada.app.finetune as ft
    import gioada.evaluate
    manager = _manager(tmp_path)
    real = gioada.evaluate.evaluate

    def stop_then_evaluate(*args, **kwargs):       # Stop pressed while the starting weights are measured
        manager.stop()
        return real(*args, **kwargs)
    monkeypatch.setattr(gioada.evaluate, "evaluate", stop_then_evaluate)
    monkeypatch.setattr(ft, "evaluate", stop_then_evaluate, raising=False)
    snap = manager.start(ft.FinetuneParams(**TINY_RUN)).wait(300)
    assert snap.state == "stopped" and snap.step == 0 and snap.run_key is None
    assert "nothing was saved" in snap.message
    assert not any((tmp_path / "runs").iterdir())


def test_stop_as_training_starts_trains_no_step_and_saves_nothing(tmp_path):
    from pytorch_lightning.callbacks import Callback

    import gioada.app.finetune as ft
    manager = _manager(tmp_path)

    class StopAtSetup(Callback):                   # Stop pressed after preparing, before the first step
        def setup(self, trainer, pl_module, stage):
            manager.stop()
    snap = manager.start(ft.FinetuneParams(**TINY_RUN), callbacks=[StopAtSetup()]).wait(300)
    assert snap.state == "stopped" and snap.step == 0 and snap.run_key is None
    assert "nothing was saved" in snap.message
    assert not any((tmp_path / "runs").iterdir())


# ---------------------------------------------------------------------------------------------------
# 7. No server path or internals in any message (Explore, Fine-tune and the API itself)
# ---------------------------------------------------------------------------------------------------
def _call(url: str, api: str, data: list) -> str:
    """A raw API call: the text of its result or error event."""
    import httpx
    event = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}).json()["event_id"]
    return httpx.get(f"{url}gradio_api/call/{api}/{event}", timeout=120).text


def test_api_failures_get_specific_messages_without_paths(bare_app):
    demo, url = bare_app
    runs = demo.gioada["registry"].runs_dir
    deep = runs / "deep"
    deep.mkdir(parents=True)
    (deep / "model.safetensors").write_bytes(b"not weights")
    (deep / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    broken = runs / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"not weights")
    (broken / "config.json").write_text((ROOT / "assets" / "gioada" / "config.json").read_text()
                                        if (ROOT / "assets" / "gioada" / "config.json").is_file() else "{}")
    listy = runs / "listy"
    listy.mkdir()
    (listy / "model.safetensors").write_bytes(b"not weights")
    (listy / "config.json").write_text("[1, 2]")
    root = str(runs.parent)
    cases = [
        ("explore_picked", ["", "", 1.0], "no scene was picked"),        # a gallery event without its data
        ("explore", ["runs/listy", "", 1, 1.0], "'runs/listy' has an invalid config.json: config.json holds a JSON list"),
        ("describe_a", ["runs/listy", ""], "holds a JSON list"),
        ("lab_step_both", [], "press Reset"),                             # a fresh session has no lab yet
        ("explore", ["runs/deep", "", 1, 1.0], "nested too deeply"),
        ("explore", ["runs/broken", "", 1, 1.0], "runs/broken"),
        ("explore", ["gioada", "", 1], "takes 4 inputs"),                  # too few
        ("explore", ["", "", 1, 1.0, "extra"], "takes 4 inputs"),          # too many
        ("apply_preset", [["Full GIO-Ada"]], "is not in the list of choices"),
        ("finetune", [0.1, 0.1, 0.5, 1e-3, 2, 2, 32, 0, "runs/deep"], "takes 10 inputs"),
    ]
    for api, data, message in cases:
        text = _call(url, api, data)
        assert "event: error" in text and message in text, (api, data, text[:400])
        assert "Something went wrong" not in text and "null" not in text.split("event: error", 1)[1][:40]
        assert root not in text and "/tmp/" not in text, (api, text[:400])


@pytest.mark.parametrize("name", [["Full GIO-Ada"], {"a": 1}, None, 3])
def test_a_preset_name_that_is_not_text_is_refused_clearly(name):
    from gioada.app.finetune import preset
    with pytest.raises(ValueError, match="unknown preset"):
        preset(name)


# ---------------------------------------------------------------------------------------------------
# 8. Training is not starved by explorers (the speed itself: bench/bench_load.py)
# ---------------------------------------------------------------------------------------------------
class _CountingExplorer:
    """Records how many scene() calls overlap and on which thread each one runs."""

    def __init__(self) -> None:
        self.lock, self.now, self.most, self.where = threading.Lock(), 0, 0, []

    def scene(self, keys, index, shift=1.0):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.where.append(threading.current_thread().name)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        return index


def test_explorers_compute_one_at_a_time_on_the_compute_thread():
    from gioada.app.serving import ComputeThread, OnComputeThread
    inner, compute = _CountingExplorer(), ComputeThread()
    explorer = OnComputeThread(inner, compute, max_waiting=8)          # all 8 admitted (the default sheds two)
    results = []
    calls = [threading.Thread(target=lambda i=i: results.append(explorer.scene([], i))) for i in range(8)]
    for t in calls:
        t.start()
    for t in calls:
        t.join()
    assert sorted(results) == list(range(8)) and inner.most == 1
    assert set(inner.where) == {compute.name}                           # never in the callers' threads


class _PrefetchingExplorer:
    """Records the order of preload, prefetch and scene calls; prefetch 1 waits until ``release`` is set."""

    def __init__(self) -> None:
        self.order, self.started, self.release = [], threading.Event(), threading.Event()

    def preload(self, keys):
        self.order.append("preload")

    def prefetch(self, keys, index, shift=1.0):
        if index == 1:
            self.started.set()
            self.release.wait(10)
        self.order.append(f"prefetch {index}")

    def scene(self, keys, index, shift=1.0):
        self.order.append(f"scene {index}")
        return index


def test_the_gallery_is_prefetched_one_scene_a_task_and_a_click_waits_behind_one_at_most():
    from gioada.app.serving import ComputeThread, OnComputeThread
    inner, compute = _PrefetchingExplorer(), ComputeThread()
    explorer = OnComputeThread(inner, compute)
    done = explorer.preload(["gioada"], range(5))
    assert inner.started.wait(10)                                # prefetch 1 is computing
    click = threading.Thread(target=explorer.scene, args=(["gioada"], 9))
    click.start()
    deadline = time.monotonic() + 10
    while not compute._queue and time.monotonic() < deadline:   # the click waits in the queue
        time.sleep(0.005)
    assert len(compute._queue) == 1
    inner.release.set()
    click.join(10)
    done.result(timeout=10)                                     # done once the last scene is
    assert inner.order == ["preload", "prefetch 0", "prefetch 1", "scene 9", "prefetch 2", "prefetch 3",
                           "prefetch 4"]


def test_a_prefetched_scene_is_served_without_running_a_network(tmp_path):
    from gioada.app.explore import Explorer
    from gioada.app.registry import ModelRegistry
    from gioada.app.serving import ComputeThread, OnComputeThread
    inner = Explorer(ModelRegistry(Path(__file__).parents[1] / "assets", tmp_path / "runs", device="cpu"))
    explorer = OnComputeThread(inner, ComputeThread())
    explorer.preload(["gioada", "source-only"], [0, 1]).result(timeout=60)
    runs = []
    hook = inner.registry.load("gioada").task_network.register_forward_hook(lambda *a: runs.append(1))
    try:
        assert "scene #1 " in explorer.scene(["gioada", "source-only"], 1, 1.0).title
        assert not runs                                          # served from the view cache
        explorer.scene(["gioada", "source-only"], 2, 1.0)          # not prefetched: computed
        assert runs
    finally:
        hook.remove()


def test_a_call_from_the_compute_thread_runs_at_once_and_errors_reach_the_caller():
    from gioada.app.serving import ComputeThread
    compute = ComputeThread()
    assert compute.call(lambda: compute.call(lambda: 7) + 1) == 8       # nested: no deadlock
    with pytest.raises(ValueError, match="bad scene"):
        compute.call(_raise, ValueError("bad scene"))
    assert compute.call(lambda: 1) == 1                                 # the thread survives an error


def _raise(e):
    raise e


def test_a_burst_of_explorers_takes_turns_with_the_training_steps():
    """Explorers compute between training steps (one at a time, never beside a step) and the run keeps most
    of the thread: each explorer's seconds weigh serving.CALL_WEIGHT times a step's."""
    from gioada.app.serving import CALL_WEIGHT, ComputeThread
    compute, events, lock = ComputeThread(), [], threading.Lock()

    def log(what):
        with lock:
            events.append(what)

    def explore():
        log("explore+")
        time.sleep(0.02)
        log("explore-")

    def train(steps):                    # a fine-tuning run: it holds the compute thread
        for _ in range(steps):
            compute.begin_step()
            log("step+")
            time.sleep(0.02)
            log("step-")
            compute.end_step()

    steps = 12 * (1 + int(CALL_WEIGHT))       # enough for all 8 explorers to be served while it runs
    run = compute.submit(train, steps)
    time.sleep(0.01)
    explorers = [threading.Thread(target=compute.call, args=(explore,)) for _ in range(8)]
    for t in explorers:
        t.start()
    run.result(timeout=30)
    for t in explorers:
        t.join(timeout=30)
    starts = [e for e in events if e.endswith("+")]
    assert starts.count("explore+") == 8 and starts.count("step+") == steps  # every explorer served in the run
    assert starts[-1] == "step+"                                              # ... before it ended
    assert all(events[i][:-1] == events[i + 1][:-1] for i in range(0, len(events), 2))   # nothing overlaps
    first, last = starts.index("explore+"), len(starts) - 1 - starts[::-1].index("explore+")
    during = starts[first:last + 1]
    assert "explore+explore+" not in "".join(during)                        # one explorer per step at most
    # Between two explorers the run takes about CALL_WEIGHT steps (the same 20 ms each); half of that, to
    # leave room for a loaded machine's timing, still tells a weighted turn from one step per explorer.
    assert during.count("step+") >= CALL_WEIGHT / 2 * (during.count("explore+") - 1)


_OPENMP_TEAMS = """
import os, sys, threading, torch
torch.set_num_threads(2)
from gioada.app.serving import ComputeThread
def native():                       # OS threads Python does not know: OpenMP's workers
    return len(os.listdir("/proc/self/task")) - threading.active_count()
def work():
    torch.nn.functional.conv2d(torch.randn(4, 16, 96, 96), torch.randn(16, 16, 3, 3))
compute = ComputeThread()
run = work if sys.argv[1] == "direct" else lambda: compute.call(work)
before, barrier = native(), threading.Barrier(5)
def handler():
    run()
    barrier.wait()                  # alive while counted, as a server's worker threads are
    barrier.wait()
threads = [threading.Thread(target=handler) for _ in range(4)]
for t in threads:
    t.start()
barrier.wait()
print(native() - before)
barrier.wait()
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_torch_work_from_many_threads_keeps_one_openmp_team(tmp_path):
    """Every thread that runs a parallel torch kernel keeps an OpenMP team; with more teams than cores
    GNU OpenMP stops spinning and a training step loses ~30% (serving.ComputeThread). Through the compute
    thread, four handlers add at most one team's worker."""
    def extra(mode):
        out = subprocess.run([sys.executable, "-c", _OPENMP_TEAMS, mode], capture_output=True, text=True,
                             check=True, env=os.environ | {"OMP_NUM_THREADS": "2"})
        return int(out.stdout.split()[-1])
    direct = extra("direct")
    if direct < 2:
        pytest.skip(f"this OpenMP runtime keeps no team per thread (+{direct} threads)")
    assert extra("compute") <= 1, direct


def test_the_app_computes_on_one_thread_shared_with_training(bare_app):
    from gioada.app.serving import OnComputeThread
    demo, _ = bare_app
    explorer, manager = demo.gioada["explorer"], demo.gioada["finetune"]
    assert isinstance(explorer, OnComputeThread) and explorer._compute is manager.compute


def test_steps_use_one_thread_while_calls_wait_and_get_their_threads_back():
    import torch

    from gioada.app.serving import ComputeThread
    compute = ComputeThread()
    compute.submit(torch.set_num_threads, 2).result()   # the thread's own setting (tests run on one)
    seen = []

    def train(steps):
        for i in range(steps):
            if i == 2:
                compute.submit(lambda: None)      # a caller arrives
            compute.begin_step()
            seen.append(torch.get_num_threads())
            compute.end_step()

    compute.submit(train, 5).result(timeout=30)
    assert seen == [2, 2, 1, 1, 1]                 # from the step the caller waited before
    assert compute.submit(torch.get_num_threads).result() == 2
    assert compute.call(torch.get_num_threads) == 1                  # calls compute on one thread


def test_a_waiting_call_runs_between_a_runs_evaluation_batches(tmp_path):
    """While a run evaluates (before and after training) an Explore click waits one batch, not the whole
    evaluation."""
    from gioada.app.serving import ComputeThread
    from gioada.config import DataConfig, ModelConfig, RunConfig
    from gioada.evaluate import evaluate
    from gioada.train import make_model
    compute, order = ComputeThread(), []
    model = make_model(RunConfig(model=ModelConfig(task_width=8, transform_width=8, disc_width=8)))
    data = DataConfig(height=32, width=96)

    def run():
        def between():
            order.append("batch")
            compute.serve_waiting()
        compute.submit(order.append, "click")         # a click arrives while the run evaluates
        return evaluate(model, data, "target", 6, batch_size=2, between=between)

    metrics = compute.submit(run).result(timeout=120)
    assert metrics["scenes"] == 6 and order == ["batch", "click", "batch", "batch"]


@pytest.mark.parametrize("config, field", [("[1, 2]", "JSON list"), ('{"model": {"init_lr": Infinity}}', "init_lr=inf"),
                                           ('{"model": {"lam_input": NaN}}', "lam_input=nan"), ('"text"', "JSON string")])
def test_a_run_whose_config_cannot_be_read_is_named_and_never_offered(tmp_path, config, field):
    from gioada.app.registry import ModelRegistry
    runs = tmp_path / "runs"
    bad = runs / "bad"
    bad.mkdir(parents=True)
    (bad / "model.safetensors").write_bytes(b"x")
    (bad / "config.json").write_text(config)
    registry = ModelRegistry(tmp_path / "assets", runs)
    assert "runs/bad" not in registry.keys() and registry.runs() == []
    [(key, reason)] = registry.broken()
    assert key == "runs/bad" and "'runs/bad'" in reason and field in reason and str(tmp_path) not in reason


def test_explorers_beyond_the_bound_are_told_busy_at_once_and_served_again_after():
    from gioada.app.serving import Busy, ComputeThread, OnComputeThread
    release, started = threading.Event(), threading.Semaphore(0)

    class Slow:
        def scene(self, keys, index, shift=1.0):
            started.release()
            release.wait(10)
            return index

    compute = ComputeThread()
    explorer = OnComputeThread(Slow(), compute, max_waiting=3)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(explorer.scene([], i))) for i in range(3)]
    for t in threads:
        t.start()
    assert started.acquire(timeout=5)                      # one computes, two wait: the bound is reached
    deadline = time.monotonic() + 5
    while explorer._waiting < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert explorer._waiting == 3
    t0 = time.monotonic()
    with pytest.raises(Busy, match="busy.*Try again"):
        explorer.scene([], 99)
    assert time.monotonic() - t0 < 0.5                      # answered at once, not queued
    release.set()
    for t in threads:
        t.join(10)
    assert sorted(results) == [0, 1, 2] and explorer.scene([], 7) == 7


def test_background_views_never_queue_up_one_computes_and_the_latest_asked_for_follows():
    from gioada.app.serving import ComputeThread, OnComputeThread
    inner, compute = _PrefetchingExplorer(), ComputeThread()
    explorer = OnComputeThread(inner, compute)
    explorer.prefetch(["gioada"], 1)                             # computing, held until released
    assert inner.started.wait(10)
    for i in (2, 3, 4):                                          # each replaces the one before: 4 is kept
        explorer.prefetch(["gioada"], i)
    assert not compute._queue                                    # nothing waits on the compute thread
    inner.release.set()
    deadline = time.monotonic() + 10
    while explorer._prefetching and time.monotonic() < deadline:
        time.sleep(0.005)
    explorer.prefetch(["gioada"], 5)                             # free again: computed at once
    assert compute.call(lambda: None) is None                     # queued behind prefetch 5, so it has run
    assert inner.order == ["prefetch 1", "prefetch 4", "prefetch 5"]
