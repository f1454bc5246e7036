"""One `faceshot` command: every group on one parser, help without torch, one error format."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

FACESHOT = str(Path(sys.executable).parent / "faceshot")
COMMANDS = ["serve", "import", "reembed", "admin-key", "admin-account", "embed", "compare", "eval-openset", "calibrate",
            "fetch-weights", "train", "evaluate", "export-encoder", "prepare-faces", "export", "watch"]


def test_the_parser_holds_every_group_and_imports_no_torch():
    probe = subprocess.run([sys.executable, "-c", "import sys, app.cli as c; c.build_parser(); "
                            "print('torch' in sys.modules)"], capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "False", probe.stderr
    from app.cli import build_parser

    listed = build_parser().format_help()
    assert all(c in listed for c in COMMANDS)


@pytest.mark.parametrize("command", [None, "serve", "train", "eval-openset"])
def test_help_answers_in_well_under_a_second(command):
    argv = [FACESHOT, *([command] if command else []), "--help"]
    t0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert out.returncode == 0 and "usage: faceshot" in out.stdout
    assert elapsed < 1.0, f"{' '.join(argv[1:])} took {elapsed:.2f} s"


def test_every_subcommand_has_an_example_and_every_flag_its_help_and_default():
    """Issue 16, point 11: help text for every argument, its default where it has one, one example a command."""
    import argparse

    from app.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(COMMANDS) <= set(sub.choices)
    problems = []
    for name, parser in sub.choices.items():
        if "Example" not in (parser.description or ""):
            problems.append(f"{name}: no example")
        for action in parser._actions:
            if action.dest == "help":
                continue
            if not action.help:
                problems.append(f"{name} {action.dest}: no help")
            elif action.option_strings and action.default not in (None, False) and "default" not in action.help:
                problems.append(f"{name} {action.option_strings[0]}: default {action.default!r} not said")
    assert problems == []


def test_errors_have_one_format_and_exit_status(tmp_path, capsys):
    from app.cli import main

    assert main(["compare", str(tmp_path / "missing.jpg"), str(tmp_path / "missing.jpg"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("faceshot: invalid_image: ") and "Traceback" not in err


@pytest.mark.parametrize("argv, stdin", [(["admin-key", "--name", "second admin"], ""),
                                         (["admin-account", "ann", "--deployment-admin", "--password-stdin"],
                                          "a long enough password\n")])
def test_the_admin_commands_load_no_face_model_and_offer_no_encoder(tmp_path, argv, stdin):
    """They only touch the database: no torch import (it took them 3.5 s), no --encoder or --device to offer."""
    probe = ("import sys, app.cli\n"
             f"status = app.cli.main({[*argv, '--data-dir', str(tmp_path / 'data')]!r})\n"
             "loaded = sorted(m for m in ('torch', 'models.pipeline', 'models.encoders.sources') if m in sys.modules)\n"
             "print('loaded:', loaded, file=sys.stderr)\n"
             "sys.exit(status)\n")
    out = subprocess.run([sys.executable, "-c", probe], input=stdin, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "loaded: []" in out.stderr.splitlines()
    assert (tmp_path / "data" / "faceshot.db").exists()
    usage = subprocess.run([FACESHOT, argv[0], "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--data-dir" in usage and "--encoder" not in usage and "--device" not in usage
