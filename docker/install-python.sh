#!/bin/sh
# The service's Python environment, defined once: the image (docker/Dockerfile), ./run.sh and the test that
# serves from exactly this environment (tests/deploy/test_image_environment.py) all install through it.
#
#   install-python.sh torch            torch and torchvision: $TORCH_SPEC (default below), from the index
#                                      $TORCH_INDEX when set (torch's CPU-only build: its /whl/cpu index)
#   install-python.sh app [EXTRAS]     faceshot itself with its runtime dependencies and EXTRAS (e.g. "[gpu]"),
#                                      editable (the migrations are found beside the package), then facenet-pytorch
#
# PIP is the pip to run (default: `pip`, the one on the PATH). Run it from the repository root.
set -eu

PIP=${PIP:-pip}
# Known-good pins: torch 2.14.1 is a CUDA build that also runs on the CPU.
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
# facenet-pytorch 2.6.0 pins torch<2.3, numpy<2 and Pillow<10.3, which would drag in an ancient CUDA torch;
# its code runs fine on current torch, so it goes in without its dependency pins (requests and tqdm come from
# pyproject.toml).
FACENET_SPEC="facenet-pytorch==2.6.0"

case "${1:-}" in
    torch)
        # shellcheck disable=SC2086
        $PIP install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} $TORCH_SPEC
        ;;
    app)
        $PIP install -e ".${2:-}"
        $PIP install --no-deps "$FACENET_SPEC"
        ;;
    *)
        echo "usage: install-python.sh torch | app [EXTRAS]" >&2
        exit 2
        ;;
esac
