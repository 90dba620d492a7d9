"""The ``roi`` and ``stack`` families of the grid: CNNs on the segmenter's LV-centred windows.

The ``burden`` family (the predicted burden as the score) is :mod:`lgenet.training.burden`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lgenet.errors import ConfigError
from lgenet.runs.grid import RunDir, parse_model_key
from lgenet.training.anatomy_nets import _augment, _masked_rows, _roi_model, _stack_model, aux_segmentation_loss

if TYPE_CHECKING:
    import torch

__all__ = [
    "check_anatomy_folds",
    "anatomy_inputs",
    "fit_anatomy",
    "AnatomyInputs",
    "ANATOMY_FAMILIES",
]

# ====================================================================================== roi / stack
# ``roi:<arch>/random``   -- a CNN on the basal frame's LV-centred window;
# ``stack:<arch>/random`` -- every slice's LV-centred window, pooled by gated attention (MIL) into one
#                             patient probability.
# Both see three channels: the tissue-normalised image, the segmenter's myocardium probability and
# its enhancement probability, from the segmentation fold model of the *same* fold, run on every
# patient of the task (so a fold-k classifier never depends on a segmenter that saw a fold-k test
# patient). That needs the segmentation run's folds to equal the task's: checked before the run.
ANATOMY_FAMILIES = ("roi", "stack")


def check_anatomy_folds(seg_run: str | Path, task_folds: dict[str, int], task: str) -> str | None:
    """Why the ``roi``/``stack`` families cannot run for ``task`` with ``seg_run`` (None = they can); a fold model
    of the run missing is a :class:`ConfigError` (the run is damaged), raised before any fold is fitted."""
    from lgenet.runs.seg import SegRunDir

    rd = SegRunDir(seg_run)
    if not rd.config_path.is_file():
        return f"the roi/stack families need a `lgenet segment train` run (with its fold models); {seg_run} is not one"
    seg_folds = rd.read_folds("seg")
    missing = [p for p in task_folds if p not in seg_folds]
    if missing:
        return f"{len(missing)} patient(s) of task {task!r} are not in the segmentation run (e.g. {missing[:3]})"
    differ = [p for p, k in task_folds.items() if seg_folds[p] != k]
    if differ:
        return (
            f"the segmentation run's folds differ from task {task!r}'s for {len(differ)} patient(s): a fold's "
            "classifier would use a segmenter trained on its own test patients. For this task, train a "
            f"segmentation with its folds: `lgenet segment train --stratify {task}` on the same manifest with the "
            "same --folds and --seed"
        )
    # every fold's segmenter before any fold is fitted (since 0.2.0): a damaged run is an error, not a skip
    models = [rd.fold_dir(k) / "model.pt" for k in sorted(set(task_folds.values()))]
    absent = [f for f in models if not f.is_file() or f.stat().st_size == 0]
    if absent:
        raise ConfigError(
            f"segmentation fold model {absent[0]} is missing or empty"
            + (f" ({len(absent)} fold models in all)" if len(absent) > 1 else "")
            + f": the roi/stack families apply each fold's segmenter. Rerun `lgenet segment train` with the run's "
            f"settings and --out {seg_run} to refit it (nothing was fitted)"
        )
    return None


def _anatomy_cache(job) -> Path:
    cfg = job.config
    return RunDir(job.run_dir).cache_dir / f"anatomy_fold{job.fold}_{cfg.anatomy_size}px.safetensors"


@dataclass
class AnatomyInputs:
    """One fold's roi/stack inputs: per manifest row, the basal window and every slice's window (channels:
    tissue-normalised image, segmenter myocardium and enhancement probabilities), and -- with an auxiliary
    loss -- the expert masks' (myocardium, enhancement) windows of the fold's *training* patients."""

    basal: torch.Tensor  # (N_rows, 3, S, S)
    slices: list  # [(s_i, 3, S, S)] per row
    patient_ids: list[str]
    basal_masks: torch.Tensor | None = None  # (N_rows, 2, S, S) uint8, zeros where has_mask is False
    slice_masks: list | None = None  # [(s_i, 2, S, S)] per row
    has_mask: list[bool] | None = None


def _aux_mask_patients(job) -> set[str]:
    """The patients whose expert masks may be read for fold ``job.fold``: its training patients only."""
    folds = RunDir(job.run_dir).read_folds(job.task)
    return {p for p, k in folds.items() if k != job.fold}


def anatomy_inputs(job) -> AnatomyInputs:
    """The fold's :class:`AnatomyInputs`, cached per fold (``cache/anatomy_fold<k>_<S>px.safetensors``)."""
    import hashlib
    import json

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from lgenet.conventions.labels import SegLabels
    from lgenet.data.manifest import load_manifest
    from lgenet.data.stacks import crop_grid, lv_centres, read_stack, sample, tissue_normalise
    from lgenet.io import read_frame
    from lgenet.runs.seg import SegRunDir, load_segmenter
    from lgenet.utils import atomic_path

    cfg = job.config
    path = _anatomy_cache(job)
    aux = cfg.anatomy_aux_weight > 0
    cohort = load_manifest(cfg.manifest, tasks=None, lge_threshold=cfg.lge_threshold) if aux else None
    allowed = _aux_mask_patients(job) if aux else set()
    labels = SegLabels(**SegRunDir(cfg.segmentation_run).load_config().labels) if aux else None
    fp = {
        "seg": str(Path(cfg.segmentation_run).resolve()),
        "fold": job.fold,
        "size": cfg.anatomy_size,
        "spacing": cfg.anatomy_spacing,
        "inputs": (RunDir(job.run_dir).read_inputs() or {}).get("manifest_sha256"),
    }
    if aux:  # (without it the fingerprint is what it was before the auxiliary loss existed: old caches stay valid)
        mask_rows = [(r.patient_id, str(r.mask)) for r in cohort.records if r.patient_id in allowed and r.mask]
        fp["masks"] = hashlib.sha256(json.dumps([mask_rows, labels.to_dict()]).encode()).hexdigest()
    fingerprint = json.dumps(fp)
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                if meta.get("fingerprint") == fingerprint:
                    counts = json.loads(meta["counts"])
                    out = AnatomyInputs(
                        fh.get_tensor("basal"),
                        list(torch.split(fh.get_tensor("slices"), counts)),
                        json.loads(meta["patient_ids"]),
                    )
                    if aux:
                        out.basal_masks = fh.get_tensor("basal_masks")
                        out.slice_masks = list(torch.split(fh.get_tensor("slice_masks"), counts))
                        out.has_mask = json.loads(meta["has_mask"])
                    return out
        except Exception:  # noqa: BLE001 - an unreadable cache is rebuilt
            pass
    seg = load_segmenter(cfg.segmentation_run, [job.fold], tta=False)
    cohort = cohort or load_manifest(cfg.manifest, tasks=None, lge_threshold=cfg.lge_threshold)
    size, spacing_out = cfg.anatomy_size, cfg.anatomy_spacing
    basal, slices, pids, bmasks, smasks, has = [], [], [], [], [], []
    for rec in cohort.records:
        with_mask = aux and rec.patient_id in allowed and rec.mask is not None
        st = read_stack(
            rec.image,
            rec.mask if with_mask else None,
            labels=labels,
            nifti_slice_axis=cfg.nifti_slice_axis,
            nifti_basal_end=cfg.nifti_basal_end,
            default_spacing=None,
        )
        vol01 = tissue_normalise(st.image, seg.spec.percentiles, method=seg.spec.normalisation, spacing=st.spacing)
        res = seg(vol01, st.spacing, normalised=True)
        probs = torch.from_numpy(res.probs.astype("float32"))  # (S, 4, H, W)
        chans = torch.stack([torch.from_numpy(vol01), probs[:, 2] + probs[:, 3], probs[:, 3]], 1)
        s, h, w = vol01.shape
        centres = torch.from_numpy(lv_centres(res.classes, fallback=tuple(res.centres.mean(0))))
        grid = crop_grid(centres, (h, w), st.spacing, size=size, out_spacing=spacing_out)
        win = sample(chans, grid)
        sl = rec.slice if rec.slice != "basal" else cfg.slice
        k = (
            s - 1
            if sl == "basal"
            else read_frame(
                rec.image, slice=int(sl), nifti_slice_axis=cfg.nifti_slice_axis, nifti_basal_end=cfg.nifti_basal_end
            )[1]["slice_index"]
        )
        basal.append(win[k])
        slices.append(win)
        pids.append(rec.patient_id)
        if aux:
            if with_mask:
                onehot = torch.nn.functional.one_hot(torch.from_numpy(st.classes.astype("int64")), 4)
                c = sample(onehot.permute(0, 3, 1, 2).float(), grid).argmax(1)  # linear on one-hot, then argmax
                m = torch.stack([c >= 2, c == 3], 1).to(torch.uint8)
            else:
                m = torch.zeros((s, 2, size, size), dtype=torch.uint8)
            bmasks.append(m[k])
            smasks.append(m)
            has.append(bool(with_mask))
    counts = [int(x.shape[0]) for x in slices]
    out = AnatomyInputs(torch.stack(basal).contiguous(), slices, pids)
    tensors = {"basal": out.basal, "slices": torch.cat(slices).contiguous()}
    meta = {"fingerprint": fingerprint, "counts": json.dumps(counts), "patient_ids": json.dumps(pids)}
    if aux:
        out.basal_masks, out.slice_masks, out.has_mask = torch.stack(bmasks).contiguous(), smasks, has
        tensors.update(basal_masks=out.basal_masks, slice_masks=torch.cat(smasks).contiguous())
        meta["has_mask"] = json.dumps(has)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return out


def fit_anatomy(job, on_epoch=None):
    """One fold of the ``roi`` or ``stack`` family: train on the fold's training patients, score its test ones."""
    import time

    import torch

    from lgenet.runs.compute import compute_signature, precision_autocast
    from lgenet.runs.jobs import FitOutcome
    from lgenet.training.trainer import fit_seed
    from lgenet.utils import seed_everything

    cfg = job.config
    rd = RunDir(job.run_dir)
    key = parse_model_key(job.model)
    labels, folds = rd.read_fold_labels(job.task), rd.read_folds(job.task)
    why = check_anatomy_folds(cfg.segmentation_run, folds, job.task)
    if why:
        raise ConfigError(f"{job.name}: {why}")
    inp = anatomy_inputs(job)
    rows_of: dict[str, list[int]] = {}
    for i, p in enumerate(inp.patient_ids):
        if p in labels:
            rows_of.setdefault(p, []).append(i)
    train_p = [p for p in sorted(labels) if folds[p] != job.fold]
    test_p = [p for p in sorted(labels) if folds[p] == job.fold]
    aux = cfg.anatomy_aux_weight > 0
    if aux:
        with_mask = [p for p in train_p if any(inp.has_mask[i] for i in rows_of[p])]
        if not with_mask:
            raise ConfigError(
                f"{job.name}: anatomy_aux_weight={cfg.anatomy_aux_weight} needs expert masks (manifest "
                f"column 'mask') for the training patients, and none of this fold's {len(train_p)} has "
                "one; add the masks or set anatomy_aux_weight: 0"
            )
    chans = [0, 0, 0] if cfg.anatomy_channels == "image" else [0, 1, 2]
    seed = fit_seed(cfg.seed, job.task, f"{key.family}:{key.arch}", key.init, job.fold)
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    stack = key.family == "stack"
    net = (_stack_model if stack else _roi_model)(key.arch, cfg.anatomy_size, aux=aux)
    device = torch.device(job.device)
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    items = [(i, labels[p]) for p in train_p for i in rows_of[p]]
    losses, aux_losses = [], []

    def batch(idx: list[int]):
        """Augmented (x, slices per row, per-row masks or None) of rows ``idx``: a stack bag is augmented per
        patient, a roi batch as one (as before the auxiliary loss existed); masks move with their images."""
        xs = [(inp.slices[i] if stack else inp.basal[i : i + 1])[:, chans] for i in idx]
        counts = [x.shape[0] for x in xs]
        if aux:
            xs = [
                torch.cat([x, (inp.slice_masks[i] if stack else inp.basal_masks[i : i + 1]).float()], 1)
                for x, i in zip(xs, idx)
            ]
        n_img = 3 if cfg.anatomy_channels == "image" else 1
        xs = (
            [_augment(x, gen, n_img) for x in xs] if stack else torch.split(_augment(torch.cat(xs), gen, n_img), counts)
        )
        if not aux:
            return torch.cat(xs), counts, None
        return (
            torch.cat([x[:, :3] for x in xs]),
            counts,
            [x[:, 3:] if inp.has_mask[i] else None for x, i in zip(xs, idx)],
        )

    t0 = time.perf_counter()
    bs = cfg.batch_size
    for epoch in range(cfg.anatomy_epochs):
        perm = torch.randperm(len(items), generator=gen).tolist()
        total, total_aux = 0.0, 0.0
        for s in range(0, len(perm), bs):
            chunk = [items[j] for j in perm[s : s + bs]]
            if len(chunk) < 2:
                continue
            y = torch.tensor([c[1] for c in chunk], dtype=torch.float32, device=device)
            x, counts, masks = batch([i for i, _ in chunk])
            with precision_autocast(device, job.precision):
                args = (x.to(device), counts) if stack else (x.to(device),)
                out = net(*args, with_aux=True) if aux else net(*args)
            logits, amap = out if aux else (out, None)
            loss = loss_fn(logits.float(), y)
            if aux:
                keep = _masked_rows(counts, masks)
                if keep:
                    target = torch.cat([m for m in masks if m is not None]).to(device)
                    la = aux_segmentation_loss(amap[keep], target)
                    loss = loss + cfg.anatomy_aux_weight * la
                    total_aux += la.item() * len(chunk)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(chunk)
        losses.append(total / max(len(items), 1))
        aux_losses.append(total_aux / max(len(items), 1))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    net.eval()
    preds = []
    with torch.no_grad():
        for p in test_p:
            for i in rows_of[p]:
                if stack:
                    logit = net(inp.slices[i][:, chans].to(device), [inp.slices[i].shape[0]])
                else:
                    logit = net(inp.basal[i : i + 1][:, chans].to(device))
                preds.append(
                    {
                        "patient_id": p,
                        "fold": job.fold,
                        "y_true": labels[p],
                        "prob": float(torch.sigmoid(logit.float())[0]),
                    }
                )
    info = {
        "task": job.task,
        "model": job.model,
        "family": key.family,
        "arch": key.arch,
        "init": key.init,
        "fold": job.fold,
        "seed": seed,
        "n_train_patients": len(train_p),
        "n_test_patients": len(test_p),
        "epochs": cfg.anatomy_epochs,
        "losses": [round(v, 6) for v in losses],
        "seconds": round(time.perf_counter() - t0, 2),
        "window_px": cfg.anatomy_size,
        "window_mm": cfg.anatomy_size * cfg.anatomy_spacing,
        "channels": cfg.anatomy_channels,
        "segmentation_run": Path(cfg.segmentation_run).resolve().name,
        "compute": compute_signature(job.device, job.precision, job.threads),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if aux:
        info.update(
            aux_weight=cfg.anatomy_aux_weight,
            aux_losses=[round(v, 6) for v in aux_losses],
            n_train_patients_with_mask=len(with_mask),
        )
    rd.save_fit(job.task, job.model, job.fold, preds=preds, info=info)
    return FitOutcome(job, seconds=info["seconds"], final_loss=losses[-1] if losses else float("nan"))
