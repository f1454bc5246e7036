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
# Another torch build (e.g. the CPU-only one) is chosen here; the versions and pins live in docker/install-python.sh,
# the one definition of the environment the image, this script and tests/deploy share.
TORCH_SPEC=${FACESHOT_TORCH_SPEC:-}

# install serve|test: what serving needs (exactly what the image installs), plus the test tools for `test`.
# A stamp per part names what it was made from (the files, the torch spec), so a change of either reinstalls.
install() {
    local runtime_stamp="$VENV/.faceshot-install" test_stamp="$VENV/.faceshot-install-test"
    local want want_test
    want=$( (cat pyproject.toml run.sh docker/install-python.sh; echo "torch: $TORCH_SPEC") | sha256sum | cut -d' ' -f1)
    want_test=$( (echo "$want"; cat pyproject.toml) | sha256sum | cut -d' ' -f1)
    local pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    if [[ ! -f "$runtime_stamp" || "$(cat "$runtime_stamp")" != "$want" ]]; then
        echo "==> setting up $VENV for serving (first run takes a few minutes)" >&2
        if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            echo "!!! faceshot needs Python >= 3.10; $PY is $("$PY" --version 2>&1 || echo missing) (set PYTHON=...)" >&2
            exit 1
        fi
        [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV" || {
            echo "!!! could not create $VENV: faceshot needs Python >= 3.10 with its venv module" >&2
            echo "!!! (Debian/Ubuntu: sudo apt-get install -y python3-venv)" >&2
            exit 1
        }
        "${pip[@]}" install --upgrade pip wheel setuptools
        # a torch spec other than the last one's replaces the installed build (pip would keep one that satisfies it)
        if [[ -f "$VENV/.faceshot-torch" && "$(cat "$VENV/.faceshot-torch")" != "$TORCH_SPEC" ]]; then
            "${pip[@]}" uninstall -y torch torchvision
        fi
        PIP="${pip[*]}" TORCH_SPEC="$TORCH_SPEC" sh docker/install-python.sh torch
        echo "$TORCH_SPEC" > "$VENV/.faceshot-torch"
        PIP="${pip[*]}" sh docker/install-python.sh app
        echo "$want" > "$runtime_stamp"
        rm -f "$test_stamp"
    fi
    if [[ "${1:-serve}" == test && ( ! -f "$test_stamp" || "$(cat "$test_stamp")" != "$want_test" ) ]]; then
        echo "==> adding the test tools to $VENV" >&2
        "${pip[@]}" install -e ".[test]"
        # the official CompreFace SDK for the compatibility tests, without its broken pin (pyproject.toml says why)
        "${pip[@]}" install --no-deps "compreface-sdk==0.6.0"
        echo "$want_test" > "$test_stamp"
    fi
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
        install serve
        exec "$VENV/bin/faceshot" serve "$@"
        ;;
    test)
        install test
        ensure_chromium
        # The data-layer tests also run against PostgreSQL when this URL is set
        # (.ci/run sets it); without it they are skipped with a message.
        # Tests start several server processes on a small machine: one torch thread
        # each avoids the oversubscription that makes every one of them crawl.
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
        # the linter first (pyproject.toml [tool.ruff]): a new violation fails the run before any test
        "$VENV/bin/ruff" check .
        # every import of the service is a runtime dependency (pyproject.toml [tool.deptry]): the image has no others
        "$VENV/bin/deptry" app models migrations
        # the layout's import contracts (pyproject.toml [tool.importlinter]): no circles, no import up a layer
        "$VENV/bin/lint-imports" --no-cache
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    install)
        install "${1:-serve}"
        ;;
    faceshot)
        install serve
        exec "$VENV/bin/faceshot" "$@"
        ;;
    *)
        echo "usage: ./run.sh serve|test|install|faceshot [args...]" >&2
        exit 2
        ;;
esac
