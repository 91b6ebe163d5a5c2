#!/bin/sh
# Install the Debian packages that building and testing nnedge need. Idempotent: does
# nothing (and needs no network) when everything is already present.
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --dev    also the tools that regenerate golden files and run reports
#                             (PyTorch, scikit-image, Pillow, NumPy) and the fuzzing runtime
set -eu

BUILD_PKGS="gcc make cmake pkg-config libpng-dev zlib1g-dev libjpeg62-turbo-dev libzstd-dev liblzma-dev"
# The classical image codecs that `nnedge rd` runs live (src/imgcodec/, docs/rd.md):
# libwebp, OpenJPEG, libavif (with libaom for encoding, dav1d for decoding), libjxl.
BUILD_PKGS="$BUILD_PKGS libwebp-dev libopenjp2-7-dev libavif-dev libjxl-dev"
FUZZ_PKGS="clang libclang-rt-14-dev"
DEV_PKGS="python3 python3-numpy python3-scipy python3-torch python3-skimage python3-pil"

want="$BUILD_PKGS"
if [ "${1:-}" = "--dev" ]; then want="$want $FUZZ_PKGS $DEV_PKGS"; fi
if [ "${1:-}" = "--fuzz" ]; then want="$want $FUZZ_PKGS"; fi

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

echo "setup: installing:$missing"
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Update the package lists only when an install from the current lists fails.
if ! $SUDO apt-get install -y --no-install-recommends $missing >/tmp/nnedge-setup.log 2>&1; then
    $SUDO apt-get update >/tmp/nnedge-setup.log 2>&1
    $SUDO apt-get install -y --no-install-recommends $missing >>/tmp/nnedge-setup.log 2>&1 || {
        echo "setup: apt-get install failed, see /tmp/nnedge-setup.log" >&2
        tail -20 /tmp/nnedge-setup.log >&2
        exit 1
    }
fi
echo "setup: done"
