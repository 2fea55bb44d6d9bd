# Two commands: `make run` starts the app on the shipped models, `make test` runs the tests.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test install browser bench assets clean

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

test: install browser
	$(PY) -m pytest -q

bench: install
	$(PY) bench/bench_sim.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_inference.py
	$(PY) -m bench.bench_load

# The shipped models (assets/): the ablation, all on the simulator at its default shift. They train into
# runs/assets-new/ and replace assets/ only once all six are done (git keeps the old ones).
# On this 2-core CPU, three at a time (one thread each) take about 90 minutes; on a GPU, minutes.
MODELS = source-only input-only output-only no-depth gioada oracle
NEW = runs/assets-new
ASSET_ARGS = --steps 3000 --seed 0 --val-every 500 --eval-scenes 200 --half
assets: install
	rm -rf $(NEW)
	OMP_NUM_THREADS=1 $(PY) -m gioada train --out $(NEW)/gioada $(ASSET_ARGS) & \
	OMP_NUM_THREADS=1 $(PY) -m gioada train --out $(NEW)/input-only --lam-output 0 $(ASSET_ARGS) & \
	OMP_NUM_THREADS=1 $(PY) -m gioada train --out $(NEW)/output-only --lam-input 0 $(ASSET_ARGS) & wait
	OMP_NUM_THREADS=1 $(PY) -m gioada train --out $(NEW)/no-depth --lam-depth 0 $(ASSET_ARGS) & \
	OMP_NUM_THREADS=1 $(PY) -m gioada train --out $(NEW)/source-only --lam-input 0 --lam-output 0 $(ASSET_ARGS) & \
	OMP_NUM_THREADS=1 $(PY) -m gioada train --out $(NEW)/oracle --oracle --lam-input 0 --lam-output 0 $(ASSET_ARGS) & wait
	for m in $(MODELS); do test -f $(NEW)/$$m/model.safetensors || { echo "$$m did not finish: assets/ left as it was"; exit 1; }; done
	for m in $(MODELS); do rm -rf assets/$$m && mv $(NEW)/$$m assets/$$m; done
	$(PY) -m gioada report --out docs

clean:
	rm -rf $(VENV) .pytest_cache
