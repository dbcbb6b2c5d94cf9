# caffe-atrous: everything runs inside .venv/, made here from the pinned versions.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: all install test demo proto bench clean

all: test

$(STAMP): pyproject.toml constraints.txt
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[test,verify,dev]'
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# Convert the bundled example network (its stage 4 is the seed document's example).
demo: $(STAMP)
	@mkdir -p demo/out
	$(BIN)/python -m caffe_atrous examples/seed_resnet.prototxt -o demo/out/seed_resnet_os8.prototxt -v
	$(BIN)/python -m caffe_atrous examples/seed_resnet.prototxt -o demo/out/seed_resnet_os8_exact.prototxt --exact
	@echo "written: demo/out/seed_resnet_os8.prototxt demo/out/seed_resnet_os8_exact.prototxt"

# Regenerate the Python module of proto/caffe.proto with the pinned protoc.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=caffe_atrous/formats proto/caffe.proto

clean:
	rm -rf $(VENV) demo/out .pytest_cache
