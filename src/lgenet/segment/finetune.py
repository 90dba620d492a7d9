"""``lgenet segment finetune``: adapt a segmentation run to a new centre with a few corrected cases (since 0.3.0).

Every member of the source run's fold ensemble is trained on from its own weights on the new centre's stacks and
corrected masks: its segmenter, and its localiser and coarse localiser only with ``loc_epochs`` > 0 (they are kept
as trained by default since 0.3.0), at a lower learning rate and for fewer epochs
(:class:`~lgenet.config.finetune.FinetuneConfig`, fixed in advance). The new centre's cases are split into their
own folds (patient level, stratified on the expert LGE % > the threshold when each stratum can fill every fold):
for each own fold the whole ensemble is fine-tuned on the other folds' cases and segments that fold's cases, so
every case is scored by a fine-tuning that did not see it -- beside the source run's masks of the same cases, so
the gain is paired. Then (``final``) the ensemble is fine-tuned on every case: the adapted run, a segmentation run
that ``segment apply --run`` takes. Its quality score is the source run's (``quality.json``, fitted on the source
run's out-of-fold patients): the summary says how it ranks the new centre's held-out masks.

The folder follows the run-folder protocol (:mod:`lgenet.runs.finetune`): a rerun resumes finished own folds and
members, and refuses other settings or inputs.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from lgenet import __version__
from lgenet.config.finetune import FinetuneConfig
from lgenet.errors import ConfigError, DataError
from lgenet.runs.finetune import FINETUNE_ROW_FIELDS, FinetuneDir
from lgenet.runs.paths import refuse_overwrite
from lgenet.runs.seg import SegRunDir
from lgenet.runs.tables import read_rows, rows_csv, write_rows
from lgenet.segment.cases import _stack_hash, cases_of, read_case
from lgenet.segment.finetune_eval import format_finetune_summary, own_folds, score_case, summarise_finetune
from lgenet.segment.quality import QUALITY_FILE
from lgenet.utils import atomic_path, atomic_write_text, sha256_file

__all__ = ["FinetuneResult", "finetune_segmentation"]

log = logging.getLogger("lgenet")


@dataclass
class FinetuneResult:
    out_dir: Path
    summary: dict = field(default_factory=dict)
    table: str = ""
    fits_run: int = 0
    fits_skipped: int = 0


def _seed(seed: int, what: str) -> int:
    return zlib.crc32(f"{seed}|finetune|{what}".encode()) & 0x7FFFFFFF


def _prepare(cfg: FinetuneConfig):
    """Validate the source run and the new centre's cases (nothing written): the source run, the adapted run's
    SegConfig, the cases, their stacks and the source members' states."""
    if not cfg.model:
        raise ConfigError("segment finetune needs --model: the segmentation run to adapt (its --out) or its bundle")
    if not cfg.manifest:
        raise ConfigError("segment finetune needs --manifest: the new centre's cases with their corrected masks")
    from lgenet.data.manifest import load_manifest

    if str(cfg.model).endswith(".lgenet") or str(cfg.model).startswith("hf://"):  # a bundle (since 0.3.0)
        from lgenet.runs.bundle import open_bundle

        src = SegRunDir(open_bundle(cfg.model, kind="segmentation"))
    else:
        src = SegRunDir(cfg.model)
    if not src.config_path.is_file():
        raise ConfigError(
            f"--model {cfg.model}: no {SegRunDir.CONFIG_NAME} there; give the --out of `lgenet segment train` or a "
            "segmentation bundle (NAME.lgenet)"
        )
    src_cfg = src.load_config()
    src.check_folds(src_cfg)
    have = src.members(src_cfg)
    chosen = list(cfg.members) if cfg.members else have
    missing = sorted(set(chosen) - set(have))
    if missing or len(set(chosen)) != len(chosen):
        raise ConfigError(
            f"--members {' '.join(map(str, chosen))}: the run {src.path} holds the fold models {have}; choose among "
            "them, each once"
        )
    members = {m: src.load_states(m) for m in chosen}  # clear errors for a missing or damaged model
    seg_cfg = src_cfg.replace(manifest=str(cfg.manifest), out=str(cfg.out), labels=cfg.labels, quality=False)
    cohort = load_manifest(cfg.manifest, tasks=None, lge_threshold=src_cfg.lge_threshold)
    cases = cases_of(cohort, need_masks=True)
    if len(cases) < 2:
        raise DataError(
            f"manifest {cfg.manifest}: {len(cases)} case(s) with a mask; fine-tuning in own folds needs at least 2 "
            "(10 or more is what the documented measurement used)"
        )
    refuse_overwrite(
        Path(cfg.out), [cfg.manifest, src.path, *(c.image for c in cases), *(c.mask for c in cases)], "--out"
    )
    stacks = {c.patient_id: read_case(c, seg_cfg) for c in cases}
    from lgenet.evaluation.segmentation import class_measures

    empty = [p for p, st in stacks.items() if not (st.classes >= 2).any()]
    if empty:
        raise DataError(
            f"manifest {cfg.manifest}: the mask of {', '.join(empty[:10])} has no myocardium under the labels "
            f"{dict(seg_cfg.labels)}; check --labels (or the import sidecar beside the manifest)"
        )
    burden = {p: class_measures(st.classes)["lge_percent"] for p, st in stacks.items()}
    labels = {p: int(v > src_cfg.lge_threshold) if math.isfinite(v) else 0 for p, v in burden.items()}
    return src, src_cfg, seg_cfg, cases, stacks, labels, members


def _slice_mm(st):
    return st.meta.get("slice_spacing") or st.meta.get("slice_thickness")


def _tune_member(state, data, spec, params, seed: int, tune_loc: bool = True):
    """One ensemble member fine-tuned on ``data`` (normalised stack, classes, spacing per case): (localiser,
    segmenter, coarse localiser) states."""
    from lgenet.segment.learn import train_fold

    _, loc, seg, coarse = state
    loc_s, seg_s, res = train_fold(data, spec, params, seed=seed, init=(loc, seg, coarse), train_localisers=tune_loc)
    return loc_s, seg_s, res.coarse_state


def _checkpoint(spec, loc, seg, coarse) -> dict:
    ck = {"format": "lgenet-seg-fold/1", "spec": spec.to_dict(), "localiser": loc, "segmenter": seg}
    if coarse is not None:
        ck["coarse_localiser"] = coarse
    return ck


def finetune_segmentation(cfg: FinetuneConfig, *, progress: bool = True) -> FinetuneResult:
    """The own-fold fine-tunings, their summary, then the adapted run (module docstring)."""
    import torch
    from tqdm.auto import tqdm

    from lgenet.config.seg import SegTraining
    from lgenet.data.stacks import tissue_normalise
    from lgenet.models.seginfer import Segmenter
    from lgenet.models.segnet import SegSpec
    from lgenet.runs.compute import compute_signature, resolve_device, resolve_precision
    from lgenet.segment.learn import SegTrainParams
    from lgenet.utils import torch_threads

    src, src_cfg, seg_cfg, cases, stacks, labels, members = _prepare(cfg)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    threads = int(cfg.num_threads or torch.get_num_threads())
    spec = SegSpec.from_dict(next(iter(members.values()))[0])
    normed = {  # the networks' inputs, normalised once for every fine-tuning
        p: (
            tissue_normalise(st.image, spec.percentiles, method=spec.normalisation, spacing=st.spacing),
            st.classes,
            st.spacing,
        )
        for p, st in stacks.items()
    }
    folds = own_folds(cases, labels, cfg.folds, cfg.seed)
    n_folds = max(folds.values()) + 1
    record = {
        "manifest": Path(cfg.manifest).name,
        "manifest_sha256": sha256_file(cfg.manifest),
        "cases": [
            {"patient_id": c.patient_id, "row": c.row, "stack_sha256": _stack_hash(stacks[c.patient_id])} for c in cases
        ],
        "source_models": {str(m): sha256_file(src.fold_dir(m) / "model.pt") for m in members},
    }

    def inputs_diff(prev: dict) -> list[str]:
        keys = ("manifest_sha256", "cases", "source_models")
        return [] if all(prev.get(k) == record[k] for k in keys) else ["the manifest, a case or a source model differs"]

    params = SegTrainParams(
        **{
            **SegTraining.values_of(src_cfg),
            "epochs": cfg.epochs,
            "loc_epochs": max(cfg.loc_epochs, 1),  # 0 (keep the localisers) is train_localisers=False
            "lr": cfg.lr,
            "loader_workers": 0,
        },
        device=str(device),
        precision=precision,
    )
    fd = FinetuneDir(cfg.out)
    result = FinetuneResult(out_dir=fd.path)
    with fd.lock():
        decision = fd.open(
            cfg,
            inputs_diff=inputs_diff,
            inputs_sha256=record["manifest_sha256"],
            device=str(device),
            precision=precision,
            threads=threads,
            threads_pinned=bool(cfg.num_threads),
        )
        threads = decision.threads
        fd.write_start(cfg, inputs=record, profile=src.read_profile() or {}, folds={"finetune": (folds, labels)})
        with fd.file_log(), torch_threads(threads):
            log.info(
                "lgenet %s segment finetune: %d cases of the new centre, %d own folds, %d ensemble members, "
                "%d + %d epochs at lr %g, %d thread(s)",
                __version__,
                len(cases),
                n_folds,
                len(members),
                cfg.loc_epochs,
                cfg.epochs,
                cfg.lr,
                threads,
            )
            total = n_folds * len(members) + (len(members) if cfg.final else 0)
            bar = tqdm(total=total, desc="fine-tuning", unit="fit", disable=not progress)
            source = Segmenter(spec, [st[1:] for st in members.values()], device=str(device), tta=src_cfg.tta)
            qpath = src.path / QUALITY_FILE
            quality = json.loads(qpath.read_text()) if qpath.is_file() else None
            profile = src.read_profile()
            src_rows = {
                c.patient_id: score_case(
                    source, stacks[c.patient_id], _slice_mm(stacks[c.patient_id]), quality, profile
                )
                for c in cases
            }
            rows = []
            for f in range(n_folds):
                test = [p for p in sorted(folds) if folds[p] == f]
                train = [p for p in sorted(folds) if folds[p] != f]
                d = fd.fold_dir(f)
                if (d / "fit.json").is_file():
                    result.fits_skipped += len(members)
                    bar.update(len(members))
                    rows += read_rows(d / "predictions.csv")
                    continue
                d.mkdir(parents=True, exist_ok=True)
                t0 = time.perf_counter()
                states = []
                for m, state in members.items():
                    part = d / f"member{m}.pt"
                    if part.is_file():  # finished before the run was stopped
                        ck = torch.load(part, map_location="cpu", weights_only=True)
                        states.append((ck["localiser"], ck["segmenter"], ck.get("coarse_localiser")))
                        result.fits_skipped += 1
                    else:
                        tuned = _tune_member(
                            state,
                            [normed[p] for p in train],
                            spec,
                            params,
                            _seed(cfg.seed, f"{f}|{m}"),
                            cfg.loc_epochs > 0,
                        )
                        with atomic_path(part) as tmp:
                            torch.save(_checkpoint(spec, *tuned), tmp)
                        states.append(tuned)
                        result.fits_run += 1
                    bar.update(1)
                tuned_seg = Segmenter(spec, states, device=str(device), tta=src_cfg.tta)
                fold_rows = []
                for p in test:
                    r = score_case(tuned_seg, stacks[p], _slice_mm(stacks[p]), quality, profile)
                    s = src_rows[p]
                    fold_rows.append(
                        {
                            "patient_id": p,
                            "own_fold": f,
                            "n_slices": int(stacks[p].image.shape[0]),
                            "status_source": s["status"],
                            "status": r["status"],
                            "dice_myo_source": s["dice_myo"],
                            "dice_myo": r["dice_myo"],
                            "dice_cavity_source": s["dice_cavity"],
                            "dice_cavity": r["dice_cavity"],
                            "dice_lge_source": s["dice_lge"],
                            "dice_lge": r["dice_lge"],
                            "lge_percent_expert": r["lge_percent_expert"],
                            "lge_percent_source": s["lge_percent_pred"],
                            "lge_percent_pred": r["lge_percent_pred"],
                            "quality_dice_source": s.get("quality_dice", ""),
                            "quality_flag_source": s.get("quality_flag", ""),
                            "quality_dice": r.get("quality_dice", ""),
                            "quality_flag": r.get("quality_flag", ""),
                            "second_look_source": s["second_look"],
                            "second_look": r["second_look"],
                        }
                    )
                info = {
                    "own_fold": f,
                    "train_cases": train,
                    "test_cases": test,
                    "members": len(members),
                    "seconds": round(time.perf_counter() - t0, 1),
                    "compute": compute_signature(str(device), precision, threads),
                    "lgenet": __version__,
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                fd.write_fit(d, {"predictions.csv": rows_csv(fold_rows, FINETUNE_ROW_FIELDS)}, info, indent=1)
                for m in members:
                    (d / f"member{m}.pt").unlink(missing_ok=True)  # the fold's rows are kept; its models are not
                rows += fold_rows
            write_rows(fd.rows_csv, rows, FINETUNE_ROW_FIELDS)
            result.summary = summarise_finetune(rows, cfg, src_cfg, n_folds=n_folds, n_members=len(members))
            atomic_write_text(fd.summary_json, json.dumps(result.summary, indent=1) + "\n")
            result.table = format_finetune_summary(result.summary)
            log.info("own-fold estimate:\n%s", result.table)
            if cfg.final:
                _final_members(fd, cfg, src, seg_cfg, members, normed, spec, params, result, bar, threads)
            bar.close()
    return result


def _final_members(fd, cfg, src, seg_cfg, members, normed, spec, params, result, bar, threads) -> None:
    """Every member fine-tuned on every case, written as the adapted segmentation run's fold models."""
    import torch

    from lgenet.runs.compute import compute_signature

    every = [normed[p] for p in sorted(normed)]
    for m, state in members.items():
        d = fd.member_dir(m)
        if (d / "fit.json").is_file():
            result.fits_skipped += 1
            bar.update(1)
            continue
        t0 = time.perf_counter()
        tuned = _tune_member(state, every, spec, params, _seed(cfg.seed, f"final|{m}"), cfg.loc_epochs > 0)
        ck = _checkpoint(spec, *tuned)
        info = {
            "fold": m,
            "finetuned_from": f"member {m} of the source run (its fold {m} model)",
            "n_train_cases": len(every),
            "train_patients": sorted(normed),
            "epochs": cfg.epochs,
            "loc_epochs": cfg.loc_epochs,
            "lr": cfg.lr,
            "spec": spec.to_dict(),
            "seconds_total": round(time.perf_counter() - t0, 1),
            "compute": compute_signature(params.device, params.precision, threads),
            "lgenet": __version__,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        fd.write_fit(d, {"model.pt": lambda tmp, ck=ck: torch.save(ck, tmp)}, info, indent=1)
        result.fits_run += 1
        bar.update(1)
    out = SegRunDir(fd.path)
    out.write_config(seg_cfg)
    atomic_write_text(out.members_path, json.dumps({"members": sorted(members)}) + "\n")
    q = src.path / QUALITY_FILE
    if q.is_file():
        with atomic_path(fd.path / QUALITY_FILE) as tmp:
            shutil.copyfile(q, tmp)
