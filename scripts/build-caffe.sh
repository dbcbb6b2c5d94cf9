#!/usr/bin/env bash
# Build the real Caffe engines (CPU only, pycaffe and the C++ tools) for the real-Caffe tests:
#   bvlc  BVLC Caffe, from ../shared/vendor/caffe/
#   psp   PSPNet's Caffe (hszhao/PSPNet: BVLC Caffe plus DeepLab's and PSPNet's layers, among
#         them BN and Interp), from ../shared/vendor/pspnet-caffe/
#
#   scripts/build-caffe.sh                      build, or reuse, both; print their roots
#   scripts/build-caffe.sh bvlc|psp             only that engine
#   scripts/build-caffe.sh --print-root [bvlc|psp]
#                                               only print where the build is (or would be);
#                                               bvlc when no engine is named
#
# Each build lives outside the clone, in a cache folder of its own under
# $XDG_CACHE_HOME/caffe-atrous/ (XDG_CACHE_HOME defaults to ~/.cache):
#   caffe-<key>/         BVLC;   key: sha256[:12] of the source tarball
#   pspnet-caffe-<key>/  PSPNet; key: sha256[:12] over the source tarball, this script and
#                        scripts/caffe_source_fixes.py (an edit to the recipe rebuilds it)
# and in each:
#     caffe/   the built source tree: caffe/python (pycaffe), caffe/build/tools (C++ tools)
#     venv/    Debian's python3 with its numpy 1.x (pycaffe is compiled against it),
#              plus the project's runtime dependencies pinned by constraints.txt
# Each part is trusted only when its stamp file exists; a stamp is written last, so a build
# that was interrupted or failed is redone from scratch on the next run.
# The sources and the facts used below: ../shared/vendor/caffe/README.md and
# ../shared/vendor/pspnet-caffe/README.md.
set -Eeuo pipefail   # -E: the ERR trap below also fires inside functions

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/build-caffe.sh"
FIXES="$REPO/scripts/caffe_source_fixes.py"
SYSTEM_PYTHON=/usr/bin/python3
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/caffe-atrous"

usage() { echo "usage: $0 [bvlc|psp] | --print-root [bvlc|psp]" >&2; exit 2; }

PRINT_ROOT=0
if [[ "${1:-}" == "--print-root" ]]; then PRINT_ROOT=1; shift; fi
(($# <= 1)) || usage
ENGINE="${1:-}"
case "$ENGINE" in
  bvlc|psp) ;;
  "") if ((PRINT_ROOT)); then
        ENGINE=bvlc
      else                     # both, each in its own run (its own lock, stamps and steps)
        bash "$SELF" bvlc
        bash "$SELF" psp
        exit 0
      fi ;;
  *) usage ;;
esac

STEP="start"
step() { STEP="$1"; echo "==> [build-caffe $ENGINE] $1"; }
trap 'echo "build-caffe ($ENGINE): FAILED at step: $STEP" >&2' ERR

DEB_PACKAGES=(build-essential libboost-system-dev libboost-thread-dev libboost-filesystem-dev
  libboost-python-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev
  libhdf5-dev liblmdb-dev libleveldb-dev libsnappy-dev libopenblas-dev python3-dev
  python3-numpy python3-protobuf python3-venv)
# Runtime dependencies of caffe_atrous that go into the venv (numpy stays Debian's).
VENV_PACKAGES=(protobuf pyyaml)

if [[ "$ENGINE" == bvlc ]]; then
  NAME="BVLC Caffe"
  TARBALL="${CAFFE_ATROUS_CAFFE_TARBALL:-$REPO/../shared/vendor/caffe/bvlc-caffe-9b891540.tar.gz}"
  TARBALL_VAR=CAFFE_ATROUS_CAFFE_TARBALL
  STRIP=0              # the tarball holds the tree itself
  FOLDER=caffe
  MINUTES=7
else
  NAME="PSPNet's Caffe"
  TARBALL="${CAFFE_ATROUS_PSPNET_TARBALL:-$REPO/../shared/vendor/pspnet-caffe/pspnet-caffe-798bdc9.tar.gz}"
  TARBALL_VAR=CAFFE_ATROUS_PSPNET_TARBALL
  STRIP=1              # the tarball holds pspnet-caffe/
  FOLDER=pspnet-caffe
  MINUTES=4
  # Its data transformer uses OpenCV unconditionally; MatRead/MatWrite need matio.
  DEB_PACKAGES+=(libopencv-dev libmatio-dev)
fi

if [[ ! -f "$TARBALL" ]]; then
  echo "build-caffe: error: $NAME source tarball not found: $TARBALL" \
       "(expected ../shared/vendor/ beside the clone, or set $TARBALL_VAR)" >&2
  exit 1
fi
if [[ "$ENGINE" == bvlc ]]; then
  KEY="$(sha256sum "$TARBALL" | cut -c1-12)"
else
  KEY="$(sha256sum "$TARBALL" "$SELF" "$FIXES" | cut -d' ' -f1 | sha256sum | cut -c1-12)"
fi
ROOT="$CACHE/$FOLDER-$KEY"
SRC="$ROOT/caffe"
VENV="$ROOT/venv"
BUILD_STAMP="$ROOT/.built"
# The venv is redone when the pins change.
VENV_STAMP="$VENV/.installed-$(cksum < "$REPO/constraints.txt" | cut -d' ' -f1)"

if ((PRINT_ROOT)); then echo "$ROOT"; exit 0; fi

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
  tar -xzf "$TARBALL" -C "$SRC" --strip-components="$STRIP"
  if [[ "$ENGINE" == bvlc ]]; then
    step "apply source changes (protobuf 3.21 API; optional scikit-image/scipy imports)"
  else
    step "apply source changes (protobuf 3.21 API; optional scikit-image/scipy imports; no cuBLAS header in a CPU build; OpenCV 4 names)"
  fi
  "$SYSTEM_PYTHON" "$FIXES" "$ENGINE" "$SRC"
}

write_makefile_config() {
  step "write Makefile.config"
  local arch pyver numpy_inc opencv="USE_OPENCV := 0" opencv_include=""
  arch="$(gcc -print-multiarch)"
  pyver="$("$SYSTEM_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  numpy_inc="$("$SYSTEM_PYTHON" -c 'import numpy; print(numpy.get_include())')"
  if [[ "$ENGINE" == psp ]]; then
    # OPENCV_VERSION := 3 only adds opencv_imgcodecs to the link line; OpenCV 4 needs it too.
    opencv=$'USE_OPENCV := 1\nOPENCV_VERSION := 3'
    opencv_include=" /usr/include/opencv4"
  fi
  cp "$SRC/Makefile.config.example" "$SRC/Makefile.config"
  # Later assignments win in make, so the example's defaults are overridden by appending.
  cat >> "$SRC/Makefile.config" <<EOF

# --- caffe-atrous: CPU-only build with Debian's packages (scripts/build-caffe.sh) ---
CPU_ONLY := 1
$opencv
BLAS := open
BLAS_INCLUDE := /usr/include/$arch/openblas-pthread
BLAS_LIB := /usr/lib/$arch/openblas-pthread
PYTHON_LIBRARIES := boost_python${pyver/./} python$pyver
PYTHON_INCLUDE := /usr/include/python$pyver $numpy_inc
PYTHON_LIB := /usr/lib/$arch
WITH_PYTHON_LAYER := 1
INCLUDE_DIRS := \$(PYTHON_INCLUDE) /usr/local/include /usr/include/hdf5/serial$opencv_include
LIBRARY_DIRS := \$(PYTHON_LIB) /usr/local/lib /usr/lib /usr/lib/$arch /usr/lib/$arch/hdf5/serial
EOF
}

compile() {
  local jobs log start
  if [[ "$ENGINE" == bvlc ]]; then
    jobs="${CAFFE_BUILD_JOBS:-$(( $(nproc) + 1 ))}"
  else                 # at most 2 jobs: the machine is shared with other work
    jobs="${CAFFE_BUILD_JOBS:-$(( $(nproc) < 2 ? $(nproc) : 2 ))}"
  fi
  log="$ROOT/build.log"
  step "make -j$jobs all pycaffe (about $MINUTES min on 2 cores; log: $log)"
  start=$SECONDS
  if ! make -C "$SRC" -j"$jobs" all pycaffe > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    false
  fi
  echo "    compiled in $(( SECONDS - start )) s"
  step "check the build: tools and import caffe"
  test -x "$SRC/build/tools/upgrade_net_proto_text.bin"
  GLOG_minloglevel=2 PYTHONPATH="$SRC/python" "$SYSTEM_PYTHON" -c 'import caffe'
  if [[ "$ENGINE" == psp ]]; then
    step "check the build: pycaffe knows BN and Interp"
    GLOG_minloglevel=2 PYTHONPATH="$SRC/python" "$SYSTEM_PYTHON" -c \
      'import caffe; known = set(caffe.layer_type_list()); assert {"BN", "Interp"} <= known'
  fi
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
  echo "==> [build-caffe $ENGINE] $NAME already built: $SRC"
else
  unpack_and_patch
  write_makefile_config
  compile
  touch "$BUILD_STAMP"
fi
if [[ -f "$VENV_STAMP" ]]; then
  echo "==> [build-caffe $ENGINE] venv up to date: $VENV"
else
  make_venv
  touch "$VENV_STAMP"
fi
STEP="done"
echo "$ROOT"
