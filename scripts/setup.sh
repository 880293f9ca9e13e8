#!/bin/sh
# Install the Debian packages libflowexp needs (if missing) and build it into
# build/.  Called by ./run-demo and ./run-tests; safe to run repeatedly.
#   scripts/setup.sh [tests|fuzz]
# "tests" also installs what only the test suite uses: Python's h5py and numpy
# (tests/check-h5py.sh reads our HDF5 files with them; never a library
# dependency) and Debian's copy of Fashion-MNIST (the image readers are tested
# on the real files when they are there).  "fuzz" also installs clang and its
# libFuzzer runtime, which only the fuzz build needs (scripts/fuzz.sh).
set -eu
cd "$(dirname "$0")/.."

# Build dependencies from Debian 12. The OpenMP build of OpenBLAS matters: the
# pthread build oversubscribes the cores inside OpenMP regions.  cairo draws
# the tools' figures (PNG, SVG, PDF); the library does not use it.  Open MPI
# (headers and pkg-config file; mpirun to launch) builds the data-parallel API
# (flowexp/dist.h, meson option mpi=auto): a build dependency, not a test-only
# one, so that every build can train on clusters; the suite's MPI test skips
# itself where mpirun is missing.
pkgs="gcc libc6-dev meson ninja-build pkg-config libopenblas-openmp-dev libopenblas0-openmp
      libhdf5-dev check zlib1g-dev libcairo2-dev libopenmpi-dev openmpi-bin"
if [ "${1:-}" = tests ]; then pkgs="$pkgs python3-h5py python3-numpy dataset-fashion-mnist"; fi
if [ "${1:-}" = fuzz ]; then pkgs="$pkgs clang-14 libclang-rt-14-dev"; fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -f build/build.ninja ]; then
    meson setup build --buildtype=release >/dev/null
fi
ninja -C build >/dev/null || ninja -C build   # rerun to show errors if it failed
