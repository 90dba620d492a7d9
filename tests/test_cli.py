"""The command line answers at once: every --help works and none imports torch."""

import subprocess
import sys

import pytest

from lgenet.cli import build_parser, main

COMMANDS = [
    [],
    ["run"],
    ["demo"],
    ["predict"],
    ["synth"],
    ["backbones"],
    ["report"],
    ["weights"],
    ["weights", "inspect"],
    ["weights", "convert"],
    ["import"],
    ["import", "emidec"],
    ["import", "nifti-masks"],
    ["quantify"],
    ["segment"],
    ["segment", "train"],
    ["segment", "apply"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "lgenet")
def test_every_help_text_renders(cmd, capsys):
    with pytest.raises(SystemExit) as ei:
        main(cmd + ["--help"])
    assert ei.value.code == 0
    assert "usage: lgenet" in capsys.readouterr().out


def test_help_and_usage_errors_do_not_import_torch():
    code = (
        "import sys\nfrom lgenet.cli import main\n"
        "for argv in (['--help'], ['run', '--help'], ['segment', 'train', '--help'], ['run', '--bogus']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr


def test_report_cli_lists_the_cam_methods_of_the_explain_package():
    from lgenet.cli.report import CAM_METHODS as CLI
    from lgenet.explain.cam import CAM_METHODS

    assert tuple(CLI) == tuple(CAM_METHODS)
    assert build_parser() is not None


def _help(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv + ["--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare word by word


def _opt_help(text, opt):
    """The help of one option of the protocol group (not the usage line)."""
    return text.split("protocol (", 1)[1].split(f" {opt} ", 1)[1].split(" --", 1)[0]


def test_demo_help_states_the_demo_defaults_not_the_seed_study(capsys):
    from lgenet.cli.options import DEMO_DEFAULTS

    text = _help(["demo"], capsys)
    assert "protocol (defaults: the seed study)" not in text and "demo's own" in text
    opts = {
        "epochs": "--epochs EPOCHS",
        "batch_size": "--batch-size BATCH_SIZE",
        "image_size": "--image-size IMAGE_SIZE",
        "inits": "--inits INITS, --init INITS",
        "archs": "--archs ARCHS, --arch ARCHS",
        "families": "--families FAMILIES",
        "precision": "--precision {auto,fp32,bf16}",
    }
    assert set(opts) == set(DEMO_DEFAULTS)
    for name, value in DEMO_DEFAULTS.items():
        shown = ",".join(value) if isinstance(value, tuple) else str(value)
        after = (
            text.split(" --families FAMILIES ", 1)[1].split(" --segmentation-run SEGMENTATION_RUN ", 1)[0]
            if name == "families"
            else _opt_help(text, opts[name])
        )  # (its help names other options)
        assert f"(demo default: {shown})" in after, name
    assert "(default: 100)" not in text  # the seed study's epochs would mislead here
    assert "(default: 0.001)" in _opt_help(text, "--lr LR")  # options the demo leaves alone: the seed's


def test_run_help_states_the_seed_study_defaults(capsys):
    from lgenet.config import RunConfig

    text = _help(["run"], capsys)
    cfg = RunConfig()
    assert "protocol (defaults: the seed study)" in text and "demo default" not in text
    for opt, value in (
        ("--epochs EPOCHS", cfg.epochs),
        ("--batch-size BATCH_SIZE", cfg.batch_size),
        ("--lr LR", cfg.lr),
        ("--folds FOLDS", cfg.folds),
        ("--seed SEED", cfg.seed),
        ("--lge-threshold LGE_THRESHOLD", cfg.lge_threshold),
        ("--head", cfg.head),
        ("--ci-method", cfg.ci_method),
        ("--inits INITS, --init INITS", ",".join(cfg.inits)),
        ("--archs ARCHS, --arch ARCHS", ",".join(cfg.archs)),
        ("--tasks TASKS", ",".join(cfg.tasks)),
    ):
        after = _opt_help(text, opt)
        assert f"(default: {value:g})" in after if isinstance(value, float) else f"(default: {value})" in after, (
            opt,
            after,
        )
    for opt in ("--image-size IMAGE_SIZE", "--device", "--precision", "--threads NUM_THREADS", "--augment"):
        assert "(default: " in _opt_help(text, opt), opt


def test_demo_defaults_yield_to_a_config_file(tmp_path):
    """`lgenet demo --config f.yaml`: the file's settings win over the demo's own defaults."""
    import argparse

    from lgenet.cli import build_parser
    from lgenet.cli.options import DEMO_DEFAULTS, config_from_args

    f = tmp_path / "c.yaml"
    f.write_text("epochs: 7\narchs: [tiny]\n")
    a = build_parser().parse_args(["demo", "--config", str(f), "--batch-size", "4"])
    a.manifest, a.out = str(tmp_path / "m.csv"), str(tmp_path / "run")
    cfg = config_from_args(a, **DEMO_DEFAULTS, segmentation_run=str(tmp_path / "seg"))
    assert cfg.epochs == 7 and cfg.archs == ("tiny",)  # from the file
    assert cfg.batch_size == 4  # from the command line
    assert cfg.image_size == DEMO_DEFAULTS["image_size"] and cfg.inits == DEMO_DEFAULTS["inits"]  # demo's own
    assert isinstance(a, argparse.Namespace)


def test_segment_train_options_reach_the_config(monkeypatch, tmp_path):
    """Every network and localiser option of `segment train` lands in the SegConfig the run is made with."""
    import lgenet.workflows.segmentation as seg

    seen = {}

    def fake_train(cfg, **kw):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(seg, "train_segmentation", fake_train)
    with pytest.raises(SystemExit):
        main(
            [
                "segment",
                "train",
                "--manifest",
                str(tmp_path / "m.csv"),
                "--out",
                str(tmp_path / "o"),
                "--res-units",
                "1",
                "--epochs",
                "200",
                "--channels",
                "8,16,32",
                "--coarse-shift-mm",
                "120",
                "--normalisation",
                "1",
                "--loc-shift-mm",
                "30",
                "--per-sample-augment",
                "--regions",
                "--loader-workers",
                "3",
                "-q",
            ]
        )
    cfg = seen["cfg"]
    assert (
        cfg.res_units,
        cfg.epochs,
        cfg.channels,
        cfg.coarse_shift_mm,
        cfg.normalisation,
        cfg.loc_shift_mm,
        cfg.batch_augment,
        cfg.regions,
        cfg.loader_workers,
    ) == (1, 200, (8, 16, 32), 120.0, 1, 30.0, False, True, 3)
    assert cfg.spec().res_units == 1 and cfg.spec().regions is True
    from lgenet.config import SegConfig
    from lgenet.errors import ConfigError

    with pytest.raises(ConfigError, match="res_units"):
        SegConfig(manifest="m.csv", out="o", res_units=-1)


def test_an_error_line_names_its_command_once():
    from lgenet.cli.main import error_line

    assert error_line("predict", "lgenet predict: give --task (lge, event)") == (
        "lgenet predict: error: give --task (lge, event)"
    )
    assert error_line("segment", "lgenet segment apply: --manifest needs --out DIR") == (
        "lgenet segment apply: error: --manifest needs --out DIR"
    )
    assert error_line("run", "row 3: no image") == "lgenet run: error: row 3: no image"
