#!/usr/bin/env bash
# One entry point for a fresh machine: creates (and reuses) the virtual
# environment at .venv, then serves, tests or runs the CLI.
#
#   ./run.sh serve            # the service on http://127.0.0.1:8000 (SQLite, CPU unless a GPU is present)
#   ./run.sh test [pytest args]
#   ./run.sh faceshot ARGS    # the CLI inside the venv
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=.venv
# Known-good pins: torch 2.14.1 is a CUDA build that also runs on CPU.
TORCH_SPEC=${FACESHOT_TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
# facenet-pytorch 2.6.0 pins torch<2.3, numpy<2 and Pillow<10.3, which would drag
# in an ancient CUDA torch; its code runs fine on current torch, so we install it
# without its dependency pins (requests and tqdm come from pyproject.toml).
FACENET_SPEC="facenet-pytorch==2.6.0"

install() {
    local stamp="$VENV/.faceshot-install"
    local want
    want=$(cat pyproject.toml run.sh | sha256sum | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    echo "==> setting up $VENV (first run takes a few minutes)" >&2
    [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
    local pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    "${pip[@]}" install --upgrade pip wheel setuptools
    # shellcheck disable=SC2086
    "${pip[@]}" install $TORCH_SPEC
    "${pip[@]}" install -e ".[test]"
    "${pip[@]}" install --no-deps "$FACENET_SPEC"
    echo "$want" > "$stamp"
}

# The admin page's browser tests drive Debian's Chromium through Playwright
# (Playwright's own browser download cannot work offline).
ensure_chromium() {
    command -v chromium >/dev/null 2>&1 && return
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing Debian's chromium for the browser tests" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "!!! chromium is not installed: the admin page's browser tests will be skipped" >&2
        echo "!!! (sudo apt-get install -y chromium)" >&2
    fi
}

cmd=${1:-serve}
shift || true
case "$cmd" in
    serve)
        install
        exec "$VENV/bin/faceshot" serve "$@"
        ;;
    test)
        install
        ensure_chromium
        # The data-layer tests also run against PostgreSQL when this URL is set
        # (.ci/run sets it); without it they are skipped with a message.
        # Tests start several server processes on a small machine: one torch thread
        # each avoids the oversubscription that makes every one of them crawl.
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
        # the linter first (pyproject.toml [tool.ruff]): a new violation fails the run before any test
        "$VENV/bin/ruff" check .
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    install)
        install
        ;;
    faceshot)
        install
        exec "$VENV/bin/faceshot" "$@"
        ;;
    *)
        echo "usage: ./run.sh serve|test|install|faceshot [args...]" >&2
        exit 2
        ;;
esac
