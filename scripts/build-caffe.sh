#!/usr/bin/env bash
# Build BVLC Caffe (CPU only, pycaffe and the C++ tools) for the real-Caffe tests.
#
#   scripts/build-caffe.sh               build, or reuse the cached build, then print its root
#   scripts/build-caffe.sh --print-root  only print where the build is (or would be)
#
# The build lives outside the clone, in a cache keyed by the source tarball's checksum:
#   $XDG_CACHE_HOME/caffe-atrous/caffe-<sha256[:12]>/   (XDG_CACHE_HOME defaults to ~/.cache)
#     caffe/   the built source tree: caffe/python (pycaffe), caffe/build/tools (C++ tools)
#     venv/    Debian's python3 with its numpy 1.x (pycaffe is compiled against it),
#              plus the project's runtime dependencies pinned by constraints.txt
# Each part is trusted only when its stamp file exists; a stamp is written last, so a build
# that was interrupted or failed is redone from scratch on the next run.
# The source and the facts used below: ../shared/vendor/caffe/README.md.
set -Eeuo pipefail   # -E: the ERR trap below also fires inside functions

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARBALL="${CAFFE_ATROUS_CAFFE_TARBALL:-$REPO/../shared/vendor/caffe/bvlc-caffe-9b891540.tar.gz}"
SYSTEM_PYTHON=/usr/bin/python3
DEB_PACKAGES=(build-essential libboost-system-dev libboost-thread-dev libboost-filesystem-dev
  libboost-python-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev
  libhdf5-dev liblmdb-dev libleveldb-dev libsnappy-dev libopenblas-dev python3-dev
  python3-numpy python3-protobuf python3-venv)
# Runtime dependencies of caffe_atrous that go into the venv (numpy stays Debian's).
VENV_PACKAGES=(protobuf pyyaml)

STEP="start"
step() { STEP="$1"; echo "==> [build-caffe] $1"; }
trap 'echo "build-caffe: FAILED at step: $STEP" >&2' ERR

if [[ ! -f "$TARBALL" ]]; then
  echo "build-caffe: error: Caffe source tarball not found: $TARBALL" \
       "(expected ../shared/vendor/caffe/ beside the clone, or set CAFFE_ATROUS_CAFFE_TARBALL)" >&2
  exit 1
fi
KEY="$(sha256sum "$TARBALL" | cut -c1-12)"
ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/caffe-atrous/caffe-$KEY"
SRC="$ROOT/caffe"
VENV="$ROOT/venv"
BUILD_STAMP="$ROOT/.built"
# The venv is redone when the pins change.
VENV_STAMP="$VENV/.installed-$(cksum < "$REPO/constraints.txt" | cut -d' ' -f1)"

case "${1:-}" in
  --print-root) echo "$ROOT"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-root]" >&2; exit 2 ;;
esac

mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
flock 9   # one build at a time per cache entry

install_debian_packages() {
  step "check Debian packages"
  local installed missing=()
  installed="$(dpkg-query -W -f='${Package} ${Status}\n' "${DEB_PACKAGES[@]}" 2>/dev/null \
               | awk '/ install ok installed$/ {print $1}' || true)"
  for p in "${DEB_PACKAGES[@]}"; do
    grep -qx "$p" <<< "$installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then echo "    all ${#DEB_PACKAGES[@]} installed"; return; fi
  local sudo=()
  [[ $EUID -ne 0 ]] && sudo=(sudo)
  step "apt-get update"
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
  step "apt-get install ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -q --no-install-recommends \
    "${missing[@]}"
}

unpack_and_patch() {
  step "unpack $(basename "$TARBALL") into $SRC"
  rm -rf "$SRC"
  mkdir -p "$SRC"
  tar -xzf "$TARBALL" -C "$SRC"
  step "apply source changes (protobuf 3.21 API; optional scikit-image/scipy imports)"
  "$SYSTEM_PYTHON" "$REPO/scripts/caffe_source_fixes.py" "$SRC"
}

write_makefile_config() {
  step "write Makefile.config"
  local arch pyver numpy_inc
  arch="$(gcc -print-multiarch)"
  pyver="$("$SYSTEM_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  numpy_inc="$("$SYSTEM_PYTHON" -c 'import numpy; print(numpy.get_include())')"
  cp "$SRC/Makefile.config.example" "$SRC/Makefile.config"
  # Later assignments win in make, so the example's defaults are overridden by appending.
  cat >> "$SRC/Makefile.config" <<EOF

# --- caffe-atrous: CPU-only build with Debian's packages (scripts/build-caffe.sh) ---
CPU_ONLY := 1
USE_OPENCV := 0
BLAS := open
BLAS_INCLUDE := /usr/include/$arch/openblas-pthread
BLAS_LIB := /usr/lib/$arch/openblas-pthread
PYTHON_LIBRARIES := boost_python${pyver/./} python$pyver
PYTHON_INCLUDE := /usr/include/python$pyver $numpy_inc
PYTHON_LIB := /usr/lib/$arch
WITH_PYTHON_LAYER := 1
INCLUDE_DIRS := \$(PYTHON_INCLUDE) /usr/local/include /usr/include/hdf5/serial
LIBRARY_DIRS := \$(PYTHON_LIB) /usr/local/lib /usr/lib /usr/lib/$arch /usr/lib/$arch/hdf5/serial
EOF
}

compile() {
  local jobs log start
  jobs="${CAFFE_BUILD_JOBS:-$(( $(nproc) + 1 ))}"
  log="$ROOT/build.log"
  step "make -j$jobs all pycaffe (about 7 min on 2 cores; log: $log)"
  start=$SECONDS
  if ! make -C "$SRC" -j"$jobs" all pycaffe > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    false
  fi
  echo "    compiled in $(( SECONDS - start )) s"
  step "check the build: tools and import caffe"
  test -x "$SRC/build/tools/upgrade_net_proto_text.bin"
  GLOG_minloglevel=2 PYTHONPATH="$SRC/python" "$SYSTEM_PYTHON" -c 'import caffe'
}

make_venv() {
  step "python venv for the real-Caffe tests: $VENV"
  rm -rf "$VENV"
  "$SYSTEM_PYTHON" -m venv --system-site-packages "$VENV"
  step "pip install ${VENV_PACKAGES[*]} (pinned by constraints.txt)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$REPO/constraints.txt" "${VENV_PACKAGES[@]}"
  step "check the venv: numpy 1.x, import caffe, import caffe_atrous"
  GLOG_minloglevel=2 PYTHONPATH="$SRC/python:$REPO" "$VENV/bin/python" -c \
    'import numpy, caffe, caffe_atrous; assert numpy.__version__.startswith("1."), numpy.__version__'
}

install_debian_packages        # also for a cached build: pycaffe needs the shared libraries
if [[ -f "$BUILD_STAMP" ]]; then
  echo "==> [build-caffe] Caffe already built: $SRC"
else
  unpack_and_patch
  write_makefile_config
  compile
  touch "$BUILD_STAMP"
fi
if [[ -f "$VENV_STAMP" ]]; then
  echo "==> [build-caffe] venv up to date: $VENV"
else
  make_venv
  touch "$VENV_STAMP"
fi
STEP="done"
echo "$ROOT"
