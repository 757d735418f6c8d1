# bakegen — `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest render-examples bench provision clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: render the llama.cpp example; with a Docker engine up, build, check and publish the demo images
demo: $(STAMP)
	$(BIN)/bakegen validate -f examples/llama.cpp/bakegen.yaml
	$(BIN)/bakegen render -f examples/llama.cpp/bakegen.yaml
	$(BIN)/bakegen plan -f examples/llama.cpp/bakegen.yaml
	@if $(BIN)/python -m bakegen.dockerhost >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory demo-images; \
	else \
		echo "No Docker engine with buildx here: rendered only (run scripts/provision-docker.sh to build the demo images)."; \
	fi

# Builds every demo image, smoke-tests it, and publishes to the local registry (127.0.0.1:5000): each
# image goes up untagged by digest, then one manifest list per final tag. Nothing is pushed if a check
# fails. DEMO_BAKE_ARGS adds bake options, e.g. DEMO_BAKE_ARGS='--var REPO=localhost:5000/mine'.
DEMO_BAKE_ARGS ?=
demo-images: $(STAMP)
	bash examples/demo/prepare-rootfs.sh
	$(BIN)/bakegen bake -f examples/demo/bakegen.yaml --push --smoke $(DEMO_BAKE_ARGS)


## test: create the virtualenv, install, lint, type-check and run every test
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check bakegen tests benchmarks
	$(BIN)/ruff format --check bakegen tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

render-examples: $(STAMP)
	$(BIN)/bakegen render -f examples/llama.cpp/bakegen.yaml

bench: $(STAMP)
	$(BIN)/python benchmarks/render_speed.py

provision:
	bash scripts/provision-docker.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
