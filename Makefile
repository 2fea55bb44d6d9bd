# Two commands: `make run` starts the app on the shipped models, `make test` runs the tests.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-fast install browser bench ablation screen final assets clean

# gioada is installed editable (pyproject.toml), with its pins from requirements.txt and the test tools.
$(VENV)/.installed: pyproject.toml requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -e .
	@# Compile the simulator's kernels once now (numba caches them), so the app starts in seconds.
	$(PY) -c "from gioada.sim import render; render(0, 'target', 32, 96)"
	touch $@

install: $(VENV)/.installed

# The real-browser test drives Debian's chromium (Playwright's own browser download does not work offline).
browser:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed: the browser test will be skipped"; }

run: install
	$(PY) app.py

# Then the training, fine-tune and lab tests (marker `isa`) again on oneDNN's AVX2 and AVX-512 (no AMX) kernels:
# each CPU a user has takes one of these paths, and CI's CPU alone takes only one.
test: install browser
	$(PY) -X faulthandler -m pytest -q
	ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -X faulthandler -m pytest -q -m isa
	ONEDNN_MAX_CPU_ISA=AVX512_CORE $(PY) -X faulthandler -m pytest -q -m isa

# The fast tier for development (no install, DDP, browser or allocator tests): about a minute.
test-fast: install
	$(PY) -X faulthandler -m pytest -q -m "not slow"

bench: install
	$(PY) bench/bench_sim.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_inference.py
	$(PY) -m bench.bench_load

# The ablation (gioada/ablation.py): every row × 3 seeds at the shipped length, resumable: a finished run is
# never retrained, so `make ablation` carries on where the last sitting stopped. On the 2-core CPU one run
# takes about 30 minutes with one thread (two run at a time); on a GPU, `bash bench/gpu.sh` trains the set.
# --reevaluate re-measures runs evaluated before window-by-window prediction (a no-op once all are current).
# Runs finished in an earlier sitting come back from their committed records first, as for the screen below.
ABLATION = runs/ablation
ablation: install
	mkdir -p $(ABLATION) && cp -rn docs/ablation/. $(ABLATION)/
	$(PY) -m gioada ablation --out $(ABLATION) --jobs 2 --threads 1
	$(PY) -m gioada ablation --out $(ABLATION) --reevaluate
	$(PY) -m gioada ablation --out $(ABLATION) --summary docs

# The stabiliser screen (issue 26): each candidate on top of gioada, 5 seeds, 1500 steps, resumable like the
# ablation; then docs/screen.json and .md.
# Runs finished in an earlier sitting come back from their committed records first (runs/ is not committed;
# a run counts as finished when its metrics.json is there), so a new machine never retrains them.
screen: install
	mkdir -p runs/screen && cp -rn docs/screen/. runs/screen/
	$(PY) -m gioada ablation --screen --jobs 2 --threads 1
	$(PY) -m gioada ablation --screen --summary docs

# The final set (issue 26 §2): every ablation row with T's encoder from ImageNet's weights (the screen's choice),
# 3 seeds, 6000 steps (gioada.ablation.FINAL), resumable like the ablation; then docs/final.json and .md. About
# two one-thread hours a run on the 2-core CPU, two at a time; on a GPU, `bash bench/gpu.sh --final`.
final: install
	mkdir -p runs/final && { test ! -d docs/final || cp -rn docs/final/. runs/final/; }
	$(PY) -m gioada ablation --final --jobs 2 --threads 1
	$(PY) -m gioada ablation --final --summary docs

# The shipped models (assets/): each a seed of an ablation row (gioada.pretrained.SHIPPED and shipped_source),
# copied into assets/ only once all are trained (git keeps the old ones), then the report's figures.
# SHIPPED_RUNS prints "name row/seedS" per model (run when the recipe runs, after `install`; into a file
# first, so a failure stops the recipe instead of feeding the loops nothing).
SHIPPED_RUNS = $(PY) -c "from gioada.pretrained import SHIPPED, shipped_source as s; \
	print(*(f'{n} {s(n)[0]}/seed{s(n)[1]}' for n in SHIPPED), sep='\n')"
assets: install
	$(PY) -m gioada ablation --out $(ABLATION) --shipped --jobs 2 --threads 1
	$(SHIPPED_RUNS) > $(ABLATION)/shipped.txt
	while read name run; do test -f $(ABLATION)/$$run/model.safetensors || \
		{ echo "$$name did not finish: assets/ left as it was"; exit 1; }; done < $(ABLATION)/shipped.txt
	while read name run; do rm -rf assets/$$name && cp -r $(ABLATION)/$$run assets/$$name || exit 1; \
		done < $(ABLATION)/shipped.txt
	$(PY) -m gioada report --out docs

clean:
	rm -rf $(VENV) .pytest_cache
