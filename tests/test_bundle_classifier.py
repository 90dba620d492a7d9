"""Classifier bundles (lgenet model export of an `lgenet run`, predict --model BUNDLE, model evaluate)."""

from __future__ import annotations

import json
import zipfile

import pytest

from small_run import forbidden_strings, small_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return small_run(tmp_path_factory)


def _images(run):
    from lgenet.data.manifest import load_manifest

    cohort = load_manifest(run.manifest, tasks=None)
    return [(r.patient_id, str(r.image)) for r in cohort.records][:5]


def test_a_classifier_bundle_predicts_as_its_run_and_carries_its_card(run, tmp_path, monkeypatch, capsys):
    from lgenet.cli import main
    from lgenet.workflows.predict import predict

    monkeypatch.setenv("LGENET_CACHE", str(tmp_path / "cache"))
    bundle = tmp_path / "clf.lgenet"
    assert main(["model", "export", str(run.run_dir), "--out", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "lge: tiny/random, 4 fold models" in out and "event: tiny/random" in out, out
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        meta = json.loads(z.read("configs/metadata.json"))
        blob = b"".join(z.read(n) for n in names)
    assert {"models/lge/fold0.safetensors", "models/event/fold3.safetensors", "configs/run_config.yaml"} <= names
    assert meta["lgenet"]["kind"] == "classifier" and meta["lgenet"]["tasks"]["lge"]["folds"] == [0, 1, 2, 3]
    perf = meta["lgenet"]["performance"]["lge"]
    assert perf["n"] == 16 and perf["auc_lower"] <= perf["auc"] <= perf["auc_upper"]
    # nothing local or identifying travels: no path of this machine, no patient id, no header identifier
    for s in [str(run.root), *[p for p, _ in _images(run)], *forbidden_strings()]:
        assert s.encode() not in blob, s
    assert main(["model", "info", str(bundle)]) == 0
    card = capsys.readouterr().out
    assert "checksums verified" in card and "Not a medical device" in card and "AUC" in card
    assert "carries some optimism" in card and "Initial weights: random" in card

    ids, paths = zip(*_images(run))
    for task in ("lge", "event"):
        direct = predict(run.run_dir, task, list(paths), ids=list(ids))
        monkeypatch.chdir(tmp_path)
        got = tmp_path / f"{task}.csv"
        assert main(["predict", "--model", str(bundle), "--task", task, *paths, "--ids", ",".join(ids),
                     "-o", str(got)]) == 0  # fmt: skip
        rows = got.read_text().splitlines()[1:]
        for p, line in zip(direct, rows):
            cells = line.split(",")
            assert cells[0] == p.patient_id and abs(float(cells[5]) - p.prob) < 1e-6, (line, p.prob)
    cams = tmp_path / "cams"
    assert main(["predict", "--model", str(bundle), "--task", "lge", paths[0], "--cam", str(cams)]) == 0
    assert (cams / "cams.csv").is_file() and list(cams.glob("*.png"))


def _refused(args, capsys, pattern):
    import re

    from lgenet.cli import main

    assert main(args) != 0
    err = capsys.readouterr().err
    assert re.search(pattern, err), err


def test_a_bundle_of_the_wrong_kind_or_a_mixed_command_is_refused_by_name(run, tmp_path, monkeypatch, capsys):
    from lgenet.cli import main
    from lgenet.errors import ConfigError, LgenetError
    from lgenet.runs.bundle import open_bundle

    monkeypatch.setenv("LGENET_CACHE", str(tmp_path / "cache"))
    bundle = tmp_path / "lge_only.lgenet"
    assert main(["model", "export", str(run.run_dir), "--out", str(bundle), "--task", "lge"]) == 0
    _, path = _images(run)[0]
    with pytest.raises(ConfigError, match=r"a classifier bundle; it is used with `lgenet predict --model"):
        open_bundle(bundle, kind="segmentation")
    _refused(["predict", "--model", str(bundle), "--run", str(run.run_dir), "--task", "lge", path], capsys, "not both")
    _refused(["predict", "--model", str(bundle), "--task", "event", path], capsys, r"holds the task\(s\) lge")
    _refused(["segment", "apply", "--model", str(bundle), path, "-o", str(tmp_path / "s.csv")], capsys,
             r"a classifier bundle; it is used with `lgenet predict --model")  # fmt: skip
    # one task: --task may be left out
    assert main(["predict", "--model", str(bundle), path]) == 0
    _refused(["model", "export", str(run.run_dir), "--out", str(tmp_path / "x.lgenet"), "--model", "nope/none"],
             capsys, r"model 'nope/none' is not in run")  # fmt: skip
    # an altered weight is refused by name
    bad = tmp_path / "bad.lgenet"
    with zipfile.ZipFile(bundle) as z, zipfile.ZipFile(bad, "w") as o:
        for n in z.namelist():
            b = z.read(n)
            o.writestr(n, b[:-1] + bytes([b[-1] ^ 1]) if n == "models/lge/fold2.safetensors" else b)
    with pytest.raises(LgenetError, match=r"altered: models/lge/fold2\.safetensors"):
        open_bundle(bad)


def test_an_external_evaluation_of_a_classifier_bundle_lands_in_a_new_card(run, tmp_path, monkeypatch, capsys):
    from lgenet.cli import main

    monkeypatch.setenv("LGENET_CACHE", str(tmp_path / "cache"))
    bundle = tmp_path / "clf.lgenet"
    assert main(["model", "export", str(run.run_dir), "--out", str(bundle), "--model", "tiny/random"]) == 0
    before = bundle.read_bytes()
    ext = tmp_path / "clf_ext.lgenet"
    assert main(["model", "evaluate", str(bundle), "--manifest", str(run.manifest), "--out", str(ext),
                 "--work", str(tmp_path / "ev"), "--label", "synthetic, 16 patients", "-q"]) == 0  # fmt: skip
    assert bundle.read_bytes() == before
    printed = capsys.readouterr().out
    assert "lge: AUC" in printed and "n = 16" in printed, printed
    with zipfile.ZipFile(ext) as z:
        meta = json.loads(z.read("configs/metadata.json"))
        card = z.read("docs/README.md").decode()
    ev = meta["lgenet"]["external"][0]["evaluation"]
    assert set(ev) == {"lge", "event"} and ev["lge"]["n"] == 16 and 0.0 <= ev["lge"]["auc"] <= 1.0
    assert "external (synthetic, 16 patients): lge: AUC" in card
    assert "named by the exporter" in card and "carries some optimism" not in card
    assert (tmp_path / "ev" / "predictions_lge.csv").is_file()


def test_a_bundle_command_missing_a_choice_or_pointed_at_a_foreign_folder_is_refused(
    run, tmp_path, monkeypatch, capsys
):
    import shutil

    from lgenet.cli import main

    monkeypatch.setenv("LGENET_CACHE", str(tmp_path / "cache"))
    bundle = tmp_path / "both.lgenet"
    assert main(["model", "export", str(run.run_dir), "--out", str(bundle)]) == 0
    capsys.readouterr()
    _, path = _images(run)[0]
    # two tasks and no --task: refused, the message naming its command once
    assert main(["predict", "--model", str(bundle), path]) == 2
    err = capsys.readouterr().err
    assert "holds the tasks lge, event; choose one (--task)" in err and err.count("lgenet predict") == 1, err
    # an empty --task list is refused by the parser, not read as "every task"
    with pytest.raises(SystemExit):
        main(["model", "export", str(run.run_dir), "--out", str(tmp_path / "none.lgenet"), "--task", ","])
    assert "holds no value" in capsys.readouterr().err and not (tmp_path / "none.lgenet").exists()
    # an unfinished run is named as such
    half = tmp_path / "half_run"
    shutil.copytree(run.run_dir, half)
    (half / "metrics.json").unlink()
    _refused(["model", "export", str(half), "--out", str(tmp_path / "half.lgenet")], capsys, r"has no metrics\.json")
    # --work onto a folder with other files (here a run) is refused before anything is written there
    before = sorted(p.name for p in half.iterdir())
    _refused(["model", "evaluate", str(bundle), "--manifest", str(run.manifest), "--out", str(tmp_path / "e.lgenet"),
              "--work", str(half), "-q"], capsys, r"--work .* already holds other files")  # fmt: skip
    assert sorted(p.name for p in half.iterdir()) == before and not (tmp_path / "e.lgenet").exists()
