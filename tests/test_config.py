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
