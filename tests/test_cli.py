"""The command line answers at once: every --help works and none imports torch."""
import subprocess
import sys

import pytest

from lgenet.cli import build_parser, main

COMMANDS = [[], ["run"], ["demo"], ["predict"], ["synth"], ["backbones"], ["report"], ["weights"], ["weights", "inspect"],
            ["weights", "convert"], ["import"], ["import", "emidec"], ["import", "nifti-masks"], ["quantify"],
            ["segment"], ["segment", "train"], ["segment", "apply"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "lgenet")
def test_every_help_text_renders(cmd, capsys):
    with pytest.raises(SystemExit) as ei:
        main(cmd + ["--help"])
    assert ei.value.code == 0
    assert "usage: lgenet" in capsys.readouterr().out


def test_help_and_usage_errors_do_not_import_torch():
    code = ("import sys\nfrom lgenet.cli import main\n"
            "for argv in (['--help'], ['run', '--help'], ['segment', 'train', '--help'], ['run', '--bogus']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr


def test_report_cli_lists_the_cam_methods_of_the_explain_package():
    from lgenet.explain.cam import CAM_METHODS
    from lgenet.report_cli import CAM_METHODS as CLI

    assert tuple(CLI) == tuple(CAM_METHODS)
    assert build_parser() is not None
