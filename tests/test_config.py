import pytest

from lgenet.config import RunConfig, load_config
from lgenet.errors import ConfigError


def test_defaults_are_the_seed_protocol():
    cfg = RunConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.folds, cfg.lge_threshold) == (100, 8, 1e-3, 4, 5.7)
    assert cfg.archs == ("resnet50", "inception_v3")
    assert cfg.inits == ("random", "imagenet", "radimagenet")
    assert (cfg.head, cfg.dense_units, cfg.dropout) == ("flatten", 512, 0.5)


def test_frozen_and_replace_validates():
    cfg = RunConfig()
    with pytest.raises(Exception):
        cfg.epochs = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="'epochs' must be an integer >= 1, got 0"):
        cfg.replace(epochs=0)


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"tasks": ("lge", "death")}, "'tasks' must be among \\['lge', 'event'\\], got 'death'"),
        ({"inits": "random,imagenett"}, "'inits' must be among"),
        ({"folds": 1}, "'folds' must be an integer >= 2, got 1"),
        ({"dropout": 1.0}, "'dropout' must be in \\[0, 1\\)"),
        ({"precision": "fp8"}, "'precision' must be one of"),
        ({"intensity_percentiles": (99, 1)}, "low < high"),
        ({"slice": "middle"}, "'slice' must be 'basal' or a slice index"),
        ({"weights": {"resnet50": {"random": "x.pt"}}}, "not a pretrained init"),
    ],
)
def test_bad_values_name_the_parameter(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        RunConfig(**kw)


def test_yaml_round_trip_and_unknown_key(tmp_path):
    cfg = RunConfig(manifest="m.csv", epochs=3, tasks=("lge",), weights={"resnet50": {"imagenet": "w.pth"}})
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    assert load_config(p) == cfg
    assert load_config(p, epochs=5).epochs == 5
    p.write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown parameter\\(s\\) \\['learning_rate'\\]"):
        load_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


# ------------------------------------------------------------------ each setting declared once (lgenet.settings)
def test_a_declaration_gives_the_default_help_range_absent_value_and_option():
    import argparse
    from dataclasses import dataclass

    from lgenet.settings import Settings, add_options, declaration, setting, values_from_args

    @dataclass(frozen=True)
    class Toy(Settings):
        rounds: int = setting(7, absent=3, help="rounds of the toy", minimum=2, cli=True)
        names: tuple[str, ...] = setting(("a", "b"), help="names", choices=("a", "b", "c"), cli=True)
        scale: float | None = setting(None, kind="float", help="scale", minimum=0, exclusive_minimum=True)

    d = declaration(Toy, "rounds")
    assert (d.default, d.absent, d.minimum, d.since) == (7, 3, 2, "0.1.0")
    assert Toy().rounds == 7 and Toy.record_view()().rounds == 3 and Toy.absent_values()["rounds"] == 3
    with pytest.raises(ConfigError, match=r"^config parameter 'rounds' must be an integer >= 2, got 1$"):
        Toy(rounds=1)
    assert Toy(names="c, a").names == ("c", "a")  # a comma-separated string is a list
    with pytest.raises(ConfigError, match=r"'names' must be among \['a', 'b', 'c'\], got 'z'"):
        Toy(names=["z"])
    assert Toy(scale=None).scale is None
    with pytest.raises(ConfigError, match=r"'scale' must be a finite number > 0 or unset, got 0"):
        Toy(scale=0)
    p = argparse.ArgumentParser(prog="toy")
    add_options(p, Toy)
    text = " ".join(p.format_help().split())
    assert "--rounds ROUNDS rounds of the toy (default: 7)" in text and "names (default: a,b)" in text
    assert values_from_args(p.parse_args(["--rounds", "5"]), Toy) == {"rounds": 5}


def test_strict_types_and_none_only_where_declared():
    with pytest.raises(ConfigError, match="'augment' must be true or false, got 1"):
        RunConfig(augment=1)
    with pytest.raises(ConfigError, match="'epochs' must be an integer >= 1, got None"):
        RunConfig(epochs=None)
    with pytest.raises(ConfigError, match="'epochs' must be an integer >= 1, got True"):
        RunConfig(epochs=True)
    assert RunConfig(image_size=None).image_size is None and RunConfig(num_threads=2).num_threads == 2
    with pytest.raises(ConfigError, match=r"'seed' must be an integer in \[0, 2\^32\), got -1"):
        RunConfig(seed=-1)
    from lgenet.config import SegConfig

    assert SegConfig(channels="8,16,32").channels == (8, 16, 32)
    with pytest.raises(ConfigError, match="'regions' must be true or false"):
        SegConfig(regions=1)


def test_an_invalid_yaml_value_names_the_file_and_the_parameter(tmp_path):
    from lgenet.config import SegConfig
    from lgenet.settings import load_settings

    p = tmp_path / "bad.yaml"
    p.write_text("epochs: 0\nbatch_size: 4\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert str(ei.value) == f"{p}: config parameter 'epochs' must be an integer >= 1, got 0"
    with pytest.raises(ConfigError) as ei:  # the command line's value is not the file's fault
        load_config(p, epochs=2, batch_size=0)
    assert str(p) not in str(ei.value) and "'batch_size' must be an integer >= 1, got 0" in str(ei.value)
    p.write_text("coarse_margin: 0.5\n")
    with pytest.raises(ConfigError, match=rf"^{p}: config parameter 'coarse_margin' must be a finite number >= 1"):
        load_settings(SegConfig, p)
    with pytest.raises(ConfigError, match=rf"^{p}: unknown parameter\(s\) \['learning_rate'\]"):
        p.write_text("learning_rate: 0.1\n")
        load_settings(SegConfig, p)


def test_help_shows_the_declared_defaults(capsys):
    from lgenet.cli import main
    from lgenet.config import OutcomeSettings, SegConfig
    from lgenet.settings import declaration

    for argv, cls, opt, name in (
        (["segment", "train"], SegConfig, "--coarse-margin COARSE_MARGIN", "coarse_margin"),
        (["segment", "train"], SegConfig, "--epochs EPOCHS", "epochs"),
        (["outcomes"], OutcomeSettings, "--bootstrap N_BOOTSTRAP", "n_bootstrap"),
        (["run"], RunConfig, "--lr LR", "lr"),
    ):
        with pytest.raises(SystemExit):
            main(argv + ["--help"])
        text = " ".join(capsys.readouterr().out.split())
        d = declaration(cls, name)
        after = text.split(f" {opt} ", 1)[1].split(" --", 1)[0]
        assert after.startswith(d.help.split()[0]) and f"(default: {d.default:g})" in after, (argv, after)


def test_the_sections_and_records_are_built_from_the_declarations():
    """SegSpec is the network section (defaulting to the values of runs made before each setting), the fold's
    SegTrainParams the training section, OutcomeSettings the outcome settings RunConfig borrows."""
    import dataclasses

    from lgenet.config import OutcomeSettings, SegConfig
    from lgenet.config.seg import SegTraining
    from lgenet.models.segnet import SegSpec
    from lgenet.runs.seg import SegRunDir
    from lgenet.segment.learn import SegTrainParams
    from lgenet.settings import declaration
    from lgenet.settings.segmentation import SegNetwork

    net = [f.name for f in dataclasses.fields(SegNetwork)]
    assert [f.name for f in dataclasses.fields(SegSpec)] == net + ["percentiles"]
    cfg = SegConfig(coarse_shift_mm=40, spacing=2)
    spec = cfg.spec()
    assert {n: getattr(spec, n) for n in net} == {n: getattr(cfg, n) for n in net}
    assert spec.coarse_shift_mm == 40.0 and isinstance(spec.coarse_shift_mm, float)  # the record holds floats
    for name in net:
        d = declaration(SegNetwork, name)
        assert getattr(SegSpec(), name) == d.absent and getattr(SegConfig(), name) == d.default
    old = SegSpec.from_dict({k: v for k, v in SegConfig().spec().to_dict().items() if k != "coarse_margin"})
    assert old.coarse_margin == 1.0  # a fold model saved before the margin: the plain gate
    assert SegRunDir("x").config_defaults() == SegConfig.absent_values()
    assert SegConfig.absent_values()["batch_augment"] is False and SegConfig().batch_augment is True
    train = [f.name for f in dataclasses.fields(SegTraining)]
    assert [f.name for f in dataclasses.fields(SegTrainParams)] == train + ["device", "precision"]
    run = RunConfig(outcome_C="cv", covariates="age,lvef", folds=3)
    st = OutcomeSettings.from_run_config(run)
    assert (st.C, st.covariates, st.folds) == ("cv", ("age", "lvef"), 3)
    a, b = declaration(RunConfig, "outcome_horizon"), declaration(OutcomeSettings, "horizon")
    assert (a.default, a.help, a.minimum, a.origin) == (b.default, b.help, b.minimum, "OutcomeSettings.horizon")


def test_what_a_resume_may_change_is_declared_with_each_setting():
    from lgenet.config import RunConfig, SegConfig
    from lgenet.runs.grid import RunDir
    from lgenet.runs.seg import SegRunDir

    assert RunDir.RESUME_FREE == RunConfig.resume_free_names()
    assert {"out", "manifest", "num_threads", "device", "outcomes", "outcome_C"} <= RunDir.RESUME_FREE
    assert not {"epochs", "lr", "seed", "folds", "archs"} & RunDir.RESUME_FREE
    assert (
        SegRunDir.RESUME_FREE
        == SegConfig.resume_free_names()
        == {"out", "manifest", "num_threads", "device", "tta", "quality"}
    )
