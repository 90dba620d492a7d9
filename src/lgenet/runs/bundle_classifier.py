"""Classifier bundles (since 0.3.0): an ``lgenet run``'s chosen model per task as one file to hand on, used by
``lgenet predict --model NAME.lgenet``.

Layout (the archive format and its checks: :mod:`lgenet.runs.bundle_archive`)::

    configs/metadata.json        MONAI bundle metadata plus an "lgenet" block: kind "classifier", the tasks with
                                 their model and folds, the training fingerprint and each model's out-of-fold
                                 performance (AUC with its CI and n, sensitivity, specificity, calibration)
    configs/run_config.yaml      the run's settings, its local paths left out (the preprocessing, slice choice,
                                 NIfTI conventions, decision threshold that predict reads)
    configs/profile.json         the training frames' intensity profile (predict's "unlike the training" note)
    models/<task>/fold<k>.safetensors   each fold model's weights, its network spec and fit record (no patient
                                 list) in the file's metadata
    docs/README.md, LICENSE.txt  the model card, and the terms of the training data and of the initial weights

Opened (:func:`lgenet.runs.bundle.open_bundle`) it is unpacked once into the cache as a run directory holding
only those models, which :func:`lgenet.workflows.predict.predict` reads as it reads any run: the same
preprocessing and the same fold models, so a bundle's probabilities are the run's own.
"""

from __future__ import annotations

import json
from pathlib import Path

from lgenet import __version__
from lgenet.errors import ConfigError
from lgenet.runs.bundle_archive import BUNDLE_FORMAT, IMAGE_INPUT, metadata_header, safetensors_metadata, write_archive
from lgenet.runs.bundle_card import DISCLAIMER, classifier_card, data_source, init_terms
from lgenet.runs.grid import RunDir
from lgenet.runs.keys import SEED_FAMILY, parse_model_key
from lgenet.utils import atomic_write_text

__all__ = ["export_classifier_bundle", "unpack_classifier", "FIT_KEYS", "PERFORMANCE_KEYS"]

#: the fit record's fields a bundle carries (no patient list, no local path)
FIT_KEYS = ("task", "model", "family", "arch", "init", "fold", "seed", "n_train_patients", "n_test_patients",
            "epochs", "image_size", "model_spec", "selection", "compute")  # fmt: skip
#: the out-of-fold metrics a bundle's card reports for each task's model
PERFORMANCE_KEYS = ("n", "n_pos", "n_neg", "n_folds", "auc", "auc_lower", "auc_upper", "ci_method", "confidence",
                    "threshold", "sensitivity", "sensitivity_lower", "sensitivity_upper", "specificity",
                    "specificity_lower", "specificity_upper", "brier", "cal_slope", "cal_intercept")  # fmt: skip


def _safe_weights_record(w: dict) -> dict:
    """The initial weights' record without any local path: where from, in which format, the file's SHA-256."""
    return {k: w.get(k) for k in ("init", "source", "format", "file_sha256", "norm", "n_loaded") if k in w}


def export_classifier_bundle(
    run: str | Path, out: Path, *, name: str | None = None, tasks: list[str] | None = None, model: str | None = None
) -> Path:
    """The bundle of ``run``'s chosen classifier for each of ``tasks`` (default every trained task): ``model``
    (``ARCH/INIT``) or each task's best seed classifier by out-of-fold AUC."""
    from safetensors.torch import save

    from lgenet.utils import source_commit

    rd = RunDir(run)
    cfg = rd.load_config()
    rows = rd.metrics_rows()
    trained = [t for t in cfg.tasks if any(r["task"] == t for r in rows)]
    tasks = list(tasks) if tasks else trained
    files: dict[str, bytes] = {}
    chosen: dict[str, dict] = {}
    perf: dict[str, dict] = {}
    inits: dict[str, dict] = {}
    for t in tasks:
        key = rd.choose_model(t, model)
        mk = parse_model_key(key)
        if mk.family != SEED_FAMILY:
            raise ConfigError(
                f"--model {key}: a {mk.family} model; a classifier bundle holds a seed-protocol classifier (ARCH/INIT),"
                " whose fold networks predict from the image alone"
            )
        nets = rd.load_fold_models(t, key, cfg.folds)  # clear errors when the run did not keep them
        for k, net in enumerate(nets):
            info = rd.fit_info(t, key, k)
            fit = {f: info[f] for f in FIT_KEYS if f in info}
            fit["weights"] = _safe_weights_record(info.get("weights") or {})
            inits.setdefault(str(fit["weights"].get("source") or mk.init), fit["weights"])
            state = {n: v.detach().contiguous() for n, v in net.state_dict().items()}
            files[f"models/{t}/fold{k}.safetensors"] = save(
                state, metadata={"spec": json.dumps(net.spec.to_dict()), "fit": json.dumps(fit), "fold": str(k)}
            )
        row = next(r for r in rows if r["task"] == t and r["model"] == key)
        pool = [r for r in rows if r["task"] == t and parse_model_key(r["model"]).family == SEED_FAMILY]
        chosen[t] = {"model": key, "folds": list(range(cfg.folds)), "image_size": nets[0].spec.image_size}
        perf[t] = {k: row.get(k) for k in PERFORMANCE_KEYS} | {
            "model": key,
            "chosen": "named by the exporter" if model else f"the best of {len(pool)} classifier(s) by out-of-fold AUC",
        }
    if not chosen:
        raise ConfigError(f"{run}: no trained task to bundle (the run's metrics.json lists none)")
    clean = cfg.replace(manifest="", out="", segmentation_run=None, weights={}, tasks=tuple(chosen),
                        families=(SEED_FAMILY,), covariates=None)  # fmt: skip
    files["configs/run_config.yaml"] = clean.to_yaml().encode()
    if rd.profile_path.is_file():
        files["configs/profile.json"] = rd.profile_path.read_bytes()
    data_set, licence = data_source(cfg)
    n = max((p.get("n") or 0) for p in perf.values())
    first = json.loads(safetensors_metadata(files[f"models/{next(iter(chosen))}/fold0.safetensors"])["fit"])
    c = first.get("compute") or {}
    compute = f"{c.get('device', 'cpu')}, {c.get('precision', '')}, torch {c.get('torch', '')}".strip(", ")
    name = name or out.stem
    meta = {
        **metadata_header(name),
        "task": "classification from one LGE short-axis frame: "
        + ", ".join(
            f"LGE > {cfg.lge_threshold:g} % of the myocardium" if t == "lge" else "a clinical event" for t in chosen
        ),
        "description": "lgenet classifier fold ensemble(s) (the seed protocol's network: backbone, Flatten, "
        "Dense(512), Dropout(0.5)): "
        + "; ".join(f"{t}: {d['model']}, {len(d['folds'])} folds" for t, d in chosen.items()),
        "data_source": data_set,
        "data_type": "dicom / nifti / png (one LGE short-axis frame per patient)",
        "image_classes": "one LGE magnitude frame, grey (the model's three channels are copies of it)",
        "label_classes": {"0": "negative", "1": "positive"},
        "pred_classes": {"0": "probability of the positive class"},
        "intended_use": "Research on LGE cardiac MR: cohort-level prediction, with every probability read beside "
        "the image and its Grad-CAM. " + DISCLAIMER,
        "references": ["Azoulay, Mei, Fauveau et al. (the seed study of lgenet)"],
        "network_data_format": {
            "inputs": IMAGE_INPUT,
            "outputs": {
                "pred": {
                    "type": "probabilities",
                    "format": "classification",
                    "num_channels": 1,
                    "spatial_shape": [1],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {"0": "positive class"},
                }
            },
        },  # fmt: skip
        "lgenet": {
            "format": BUNDLE_FORMAT,
            "kind": "classifier",
            "tasks": chosen,
            "training": {
                "data_set": data_set,
                "patients": n,
                "labels": "the training manifest's "
                + ", ".join(f"lge_percent > {cfg.lge_threshold:g}" if t == "lge" else "event" for t in chosen),
                "folds": cfg.folds,
                "seed": cfg.seed,
                "epochs": cfg.epochs,
                "lge_threshold": cfg.lge_threshold,
                "slice": str(cfg.slice),
                "initial_weights": inits,
                "lgenet": str(c.get("lgenet") or "unknown"),
                "compute": compute,
            },
            "exported_by": {"lgenet": __version__, "commit": source_commit()},
            "performance": perf,
            "external": [],
        },
    }
    files["configs/metadata.json"] = json.dumps(meta, indent=1).encode()
    files["docs/README.md"] = classifier_card(meta).encode()
    files["LICENSE.txt"] = (licence + "\n" + init_terms(inits) + "\n" + DISCLAIMER + "\n").encode()
    write_archive(out, files)
    return out


def unpack_classifier(files: dict[str, bytes], tmp: Path) -> None:
    """A classifier bundle's files as an ``lgenet run`` directory in ``tmp`` holding only the bundled models."""
    import torch
    from safetensors.torch import load

    meta = json.loads(files["configs/metadata.json"])
    lg = meta["lgenet"]
    (tmp / RunDir.CONFIG_NAME).write_bytes(files["configs/run_config.yaml"])
    if "configs/profile.json" in files:
        (tmp / "profile.json").write_bytes(files["configs/profile.json"])
    rows = []
    rd = RunDir(tmp)
    for t, d in lg["tasks"].items():
        for k in d["folds"]:
            b = files[f"models/{t}/fold{k}.safetensors"]
            head = safetensors_metadata(b)
            spec, fit = json.loads(head["spec"]), json.loads(head["fit"])
            fold = rd.fit_dir(t, d["model"], k)
            fold.mkdir(parents=True)
            torch.save({"format": "lgenet-fold-model/1", "spec": spec, "state_dict": load(b)}, fold / "model.pt")
            atomic_write_text(fold / "fit.json", json.dumps(fit | {"from_bundle": meta["name"]}, indent=1))
        mk = parse_model_key(d["model"])
        rows.append({"task": t, "model": d["model"], "arch": mk.arch, "init": mk.init, "best": True,
                     **{k: v for k, v in lg["performance"][t].items() if k not in ("model", "chosen")}})  # fmt: skip
    atomic_write_text(rd.metrics_json_path, json.dumps({"description": f"bundle {meta['name']}", "metrics": rows}))
