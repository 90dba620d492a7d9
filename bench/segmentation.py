"""Learned segmentation on EMIDEC: the 4-fold CV, its targets, and a domain-shift check.

    python bench/segmentation.py                      # CV with the default SegConfig, then the shift check
    python bench/segmentation.py --epochs 60 --out runs/bench/seg_e60
    python bench/segmentation.py --quick              # 16 patients, 2 folds, 2 epochs: checks the script
    python bench/segmentation.py --shift-only --out runs/bench/seg   # the shift check on a finished run

What it does, through the library API only:

1. ``import_emidec`` into ``<out>/emidec.csv`` (once).
2. ``train_segmentation``: the same patient folds as ``lgenet run`` (stratified on whole-LV LGE > 5.7 %);
   settings fixed in advance (the SegConfig defaults unless options say otherwise; nothing is chosen
   on a test fold). A killed run resumes finished folds.
3. The targets of the segmentation issue, each with its measured value: myocardium Dice, enhancement
   Dice (MI cases), ICC and bias of the predicted whole-LV LGE %, AUC of whole-stack and basal-slice
   predicted burden for whole-LV LGE > 5.7 % (DeLong 95 % CI, n).
4. Domain-shift check: every fold model is applied to its own held-out patients' stacks transformed
   the way another centre's would differ, and Dice / AUC are compared with the untransformed ones:
   offset removed, background noise instead of zero fill, intensities x 0.3, resampled to 0.7 mm,
   rotated 90 degrees, flipped, a larger field of view (heart off-centre in a 380 mm noisy canvas), and all
   of them at once.
5. Markdown to stdout and ``<out>/results.md``; JSON to ``<out>/results.json``; with the machine,
   load average, torch threads and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lgenet.config import SegConfig  # noqa: E402
from lgenet.config.seg import UNNULLED_KINDS  # noqa: E402
from lgenet.data.importers import import_emidec  # noqa: E402
from lgenet.evaluation.metrics import auc_ci  # noqa: E402
from lgenet.evaluation.segmentation import class_measures, dice  # noqa: E402
from lgenet.segment import SegRunDir, load_segmenter, train_segmentation  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EMIDEC = REPO.parent / "shared" / "data" / "emidec"
TARGETS = {
    "dice_myo": 0.85,
    "dice_lge": 0.65,
    "icc": 0.85,
    "bias_abs": 2.0,
    "auc_whole": 0.95,
    "auc_basal": 0.80,
    "shift_auc_drop": 0.03,
}


# ----------------------------------------------------------------------------------- domain shift
def _tissue_floor(img: np.ndarray) -> float:
    nz = img[img > img.min()]
    return float(np.percentile(nz, 1)) if nz.size else 0.0


def _resample(img: np.ndarray, cls: np.ndarray, spacing, new: float):
    import torch
    import torch.nn.functional as F

    s, h, w = img.shape
    nh, nw = int(round(h * spacing[0] / new)), int(round(w * spacing[1] / new))
    t = torch.from_numpy(img)[:, None]
    i2 = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False)[:, 0].numpy()
    c2 = F.interpolate(torch.from_numpy(cls.astype(np.float32))[:, None], size=(nh, nw), mode="nearest")[:, 0]
    return i2, c2.numpy().astype(np.uint8), (new, new)


def _noise_like(shape, scale, rng):
    return rng.rayleigh(scale, shape).astype(np.float32)


def transforms():
    """name -> f(image, classes, spacing, rng) -> (image, classes, spacing)."""

    def offset(img, cls, sp, rng):
        return np.clip(img - _tissue_floor(img), 0, None), cls, sp

    def background(img, cls, sp, rng):
        fill = img <= img.min()
        out = img.copy()
        out[fill] = _noise_like(int(fill.sum()), 0.05 * float(np.percentile(img[~fill], 50)), rng)
        return out, cls, sp

    def rescale(img, cls, sp, rng):
        return img * 0.3, cls, sp

    def resample(img, cls, sp, rng):
        return _resample(img, cls, sp, 0.7)

    def rot90(img, cls, sp, rng):
        return np.ascontiguousarray(np.rot90(img, 1, (1, 2))), np.ascontiguousarray(np.rot90(cls, 1, (1, 2))), sp[::-1]

    def flip(img, cls, sp, rng):
        return np.ascontiguousarray(img[:, :, ::-1]), np.ascontiguousarray(cls[:, :, ::-1]), sp

    def fov(img, cls, sp, rng):
        s, h, w = img.shape
        nh, nw = max(h, int(380 / sp[0])), max(w, int(380 / sp[1]))
        r0, c0 = int(rng.integers(0, nh - h + 1)), int(rng.integers(0, nw - w + 1))
        big = _noise_like((s, nh, nw), 0.05 * float(np.percentile(img[img > img.min()], 50)), rng)
        bc = np.zeros((s, nh, nw), np.uint8)
        big[:, r0 : r0 + h, c0 : c0 + w] = np.where(img > img.min(), img, big[:, r0 : r0 + h, c0 : c0 + w])
        bc[:, r0 : r0 + h, c0 : c0 + w] = cls
        return big, bc, sp

    def everything(img, cls, sp, rng):
        for f in (offset, background, rescale, resample, rot90, flip, fov):
            img, cls, sp = f(img, cls, sp, rng)
        return img, cls, sp

    return {
        "offset removed": offset,
        "noisy background": background,
        "intensity x0.3": rescale,
        "resampled 0.7 mm": resample,
        "rotated 90\u00b0": rot90,
        "flipped": flip,
        "380 mm field of view": fov,
        "all at once": everything,
    }


def centre_transforms():
    """The other-centre proxies of :mod:`lgenet.data.centre_shift` in this check's form (EMIDEC's slices lie 10 mm
    apart; the thick-slice proxy keeps 2-6 of them, 20 mm apart)."""
    from lgenet.data.centre_shift import CENTRE_SHIFTS

    def wrap(f):
        return lambda img, cls, sp, rng: f(img, cls, sp, 10.0, rng)[:3]

    return {name: wrap(f) for name, f in CENTRE_SHIFTS.items()}


def shift_check(
    run: Path, emidec_csv: Path, *, limit: int | None = None, coarse: bool = True, models: dict | None = None
) -> dict:
    """``models``: fold -> Segmenter to use instead of the run's own (e.g. with another coarse gate)."""
    from lgenet.data.manifest import load_manifest
    from lgenet.segment import cases_of, read_case

    rd = SegRunDir(run)
    cfg = rd.load_config()
    folds = rd.read_folds("seg")
    cases = [c for c in cases_of(load_manifest(emidec_csv, tasks=None), need_masks=True) if c.patient_id in folds]
    if limit:
        cases = cases[:limit]
    if models is None:
        models = {k: load_segmenter(run, [k], coarse=coarse) for k in range(cfg.folds)}
    tf = {"none": lambda i, c, s, r: (i, c, s), **transforms(), **centre_transforms()}
    out = {}
    for name, f in tf.items():
        rows = []
        t0 = time.time()
        for c in cases:
            st = read_case(c, cfg)
            rng = np.random.default_rng(zlib.crc32(c.patient_id.encode()))  # not hash(): salted per process
            img, cls, sp = f(st.image.astype(np.float32), st.classes, st.spacing, rng)
            res = models[folds[c.patient_id]](img, sp)
            mp, me = class_measures(res.classes), class_measures(cls)
            rows.append(
                {
                    "dice_myo": dice(res.classes >= 2, cls >= 2),
                    "dice_lge": dice(res.classes == 3, cls == 3),
                    "pred": mp["lge_percent"],
                    "basal": mp["lge_percent_basal"],
                    "ref": me["lge_percent"],
                    "y": int(me["lge_percent"] > cfg.lge_threshold),
                }
            )
        y = np.array([r["y"] for r in rows])
        auc = auc_ci(y, np.nan_to_num(np.array([r["pred"] for r in rows]), nan=0.0))
        aucb = auc_ci(y, np.nan_to_num(np.array([r["basal"] for r in rows]), nan=0.0))
        dm = np.nanmean([r["dice_myo"] for r in rows])
        dl = np.nanmean([r["dice_lge"] for r in rows if r["ref"] > 0])
        out[name] = {
            "dice_myo": float(dm),
            "dice_lge": float(dl),
            "auc_whole": auc.auc,
            "auc_whole_ci": [auc.lower, auc.upper],
            "auc_basal": aucb.auc,
            "n": len(rows),
            "seconds": round(time.time() - t0, 1),
        }
        print(
            f"  shift {name:<22} Dice myo {dm:.3f}  Dice LGE {dl:.3f}  AUC {auc.auc:.3f}  basal AUC {aucb.auc:.3f}",
            flush=True,
        )
    base = out["none"]
    for name, v in out.items():
        v["auc_change"] = v["auc_whole"] - base["auc_whole"]
        v["dice_myo_change"] = v["dice_myo"] - base["dice_myo"]
    return out


# ----------------------------------------------------------------------------------- report
def markdown(summary: dict, shift: dict | None, meta: dict, shift_without_coarse: dict | None = None) -> str:
    a = summary["agreement"]["network"]
    auc = summary["auc_lge"]
    L = [
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; torch threads {meta['threads']}; load average at start {meta['load_start']:.2f}, "
        f"at end {meta['load_end']:.2f}; date {meta['date']}; wall time of the CV {meta['wall_cv_s']:.0f} s "
        f"({summary.get('seconds_total', float('nan')):.0f} s of fold compute in all), with the shift check "
        f"{meta['wall_s']:.0f} s",
        "",
        "| measure (out-of-fold, n = %d) | value | target | met |" % summary["n"],
        "|---|---|---|---|",
    ]

    def row(name, val, target, ok):
        L.append(f"| {name} | {val} | {target} | {'yes' if ok else '**no**'} |")

    dm, dl = summary["dice_myo"], summary["dice_lge"]
    row("myocardium Dice, mean \u00b1 SD", f"{dm['mean']:.3f} \u00b1 {dm['sd']:.3f}", "\u2265 0.85", dm["mean"] >= 0.85)
    row(
        f"enhancement Dice (MI cases, n = {dl['n']})",
        f"{dl['mean']:.3f} \u00b1 {dl['sd']:.3f}",
        "\u2265 0.65",
        dl["mean"] >= 0.65,
    )
    if summary.get("dice_lge_all", {}).get("mean") is not None:  # not a target: the EMIDEC challenge's convention
        da = summary["dice_lge_all"]
        L.append(
            f"| enhancement Dice, every patient (empty on empty = 1, the challenge's convention; n = {da['n']}) | "
            f"{da['mean']:.3f} \u00b1 {da['sd']:.3f} | (not a target) | |"
        )
    row(
        "whole-LV LGE % ICC(A,1) (95 % CI)",
        f"{a['icc']:.3f} ({a['icc_lower']:.3f}\u2013{a['icc_upper']:.3f})",
        "\u2265 0.85",
        a["icc"] >= 0.85,
    )
    row(
        "whole-LV LGE % bias (limits of agreement)",
        f"{a['bias']:+.2f} pp ({a['loa_lower']:+.1f} to {a['loa_upper']:+.1f})",
        "within \u00b12 pp",
        abs(a["bias"]) <= 2,
    )
    for key, name, tgt in (
        ("whole_lv", "AUC lge, whole stack (predicted burden)", 0.95),
        ("basal_slice", "AUC lge, basal slice only (predicted basal burden)", 0.80),
    ):
        v = auc[key]
        row(
            name,
            f"{v['auc']:.3f} ({v['lower']:.3f}\u2013{v['upper']:.3f}), n = {v['n']}",
            f"\u2265 {tgt:.2f}",
            v["auc"] >= tgt,
        )
    L += [
        "",
        "Other burden rules inside the predicted myocardium (remote from the predicted myocardium):",
        "",
        "| rule | ICC | r | bias | LoA |",
        "|---|---|---|---|---|",
    ]
    for m in ("network", "nsd2", "nsd3", "nsd5", "nsd6", "fwhm"):
        g = summary["agreement"].get(m, {})
        if "icc" in g:
            L.append(
                f"| {m} | {g['icc']:.3f} | {g['pearson_r']:.3f} | {g['bias']:+.2f} | {g['loa_lower']:+.1f} to "
                f"{g['loa_upper']:+.1f} |"
            )
    for title, table in (
        ("Domain-shift check (each fold model on its own held-out patients, transformed):", shift),
        (
            "The same check with the coarse localiser left out (the same localisers and segmenters):",
            shift_without_coarse,
        ),
    ):
        if not table:
            continue
        L += [
            "",
            title,
            "",
            "| transform | Dice myo | Dice LGE (MI) | AUC whole | \u0394AUC | basal AUC |",
            "|---|---|---|---|---|---|",
        ]
        for name, v in table.items():
            L.append(
                f"| {name} | {v['dice_myo']:.3f} | {v['dice_lge']:.3f} | {v['auc_whole']:.3f} | "
                f"{v['auc_change']:+.3f} | {v['auc_basal']:.3f} |"
            )
    return "\n".join(L)


def quick_subset(manifest: Path, out: Path) -> Path:
    """``<out>/emidec_quick.csv``: 6 normal and 10 MI patients of an EMIDEC manifest (the --quick runs)."""
    import csv

    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep = [r for r in rows if r["patient_id"].startswith("Case_N")][:6] + [
        r for r in rows if r["patient_id"].startswith("Case_P")
    ][:10]
    q = out / "emidec_quick.csv"
    with open(q, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    return q


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emidec", default=str(DEFAULT_EMIDEC))
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "seg"))
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--loc-epochs", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--executor", default="local", choices=["local", "process"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--seed", type=int, help="SegConfig.seed (folds and fit seeds; default 0, the folds `lgenet run` uses)"
    )
    aug = ap.add_mutually_exclusive_group()
    aug.add_argument(
        "--batch-augment",
        action="store_true",
        help="SegConfig.batch_augment=True (configuration 4; the default since 2026-11-27)",
    )
    aug.add_argument(
        "--per-sample-augment", action="store_true", help="SegConfig.batch_augment=False (configuration 3)"
    )
    ap.add_argument(
        "--normalisation",
        type=int,
        choices=(1, 2, 3),
        help="SegConfig.normalisation (2, filled body, the default since 2026-11-27; 1 for configurations 1-4; "
        "3 robust to bright spots, configuration 18)",
    )
    ap.add_argument("--coarse-shift-mm", type=float, help="SegConfig.coarse_shift_mm (a coarse localiser; 0: none)")
    ap.add_argument("--coarse-margin", type=float, help="SegConfig.coarse_margin (default 1.2)")
    ap.add_argument("--loc-thorax", type=float, help="SegConfig.loc_thorax (whole-thorax composites per slice)")
    ap.add_argument(
        "--loc-thorax-nets",
        choices=("both", "coarse", "coarse+centred"),
        help="SegConfig.loc_thorax_nets (which localisers)",
    )
    ap.add_argument("--aug-edge", type=float, help="SegConfig.aug_edge (probability of coil spots / wrap-around)")
    ap.add_argument("--aug-unnulled", type=float, help="SegConfig.aug_unnulled (probability of a grey normal wall)")
    ap.add_argument(
        "--aug-unnulled-kind", choices=UNNULLED_KINDS, help="SegConfig.aug_unnulled_kind (how the wall is greyed)"
    )
    ap.add_argument("--res-units", type=int, help="SegConfig.res_units (residual units per UNet level; default 2)")
    ap.add_argument("--aug-intensity-scale", type=float, help="SegConfig.aug_intensity_scale (default 0.5: x0.5-1.5)")
    ap.add_argument("--aug-intensity-shift", type=float, help="SegConfig.aug_intensity_shift (default 0.3: +-0.3)")
    ap.add_argument(
        "--loader-workers",
        type=int,
        help="SegConfig.loader_workers (DataLoader processes per fold; "
        "default auto: 0 on a CPU, up to 3 on a GPU; configuration 15 used 3)",
    )
    ap.add_argument(
        "--regions", action="store_true", help="SegConfig.regions=True (nested sigmoid regions; configuration 9)"
    )
    ap.add_argument("--no-shift", action="store_true")
    ap.add_argument("--shift-only", action="store_true")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "emidec.csv"
    if not manifest.is_file():
        import_emidec(a.emidec, manifest)
    if a.quick:
        manifest = quick_subset(manifest, out)
    over = {
        k: v
        for k, v in (
            ("epochs", a.epochs),
            ("loc_epochs", a.loc_epochs),
            ("num_threads", a.threads),
            ("device", a.device),
            ("precision", a.precision),
            ("seed", a.seed),
            ("normalisation", a.normalisation),
            ("coarse_shift_mm", a.coarse_shift_mm),
            ("coarse_margin", a.coarse_margin),
            ("loc_thorax", a.loc_thorax),
            ("loc_thorax_nets", a.loc_thorax_nets),
            ("aug_edge", a.aug_edge),
            ("aug_unnulled", a.aug_unnulled),
            ("aug_unnulled_kind", a.aug_unnulled_kind),
            ("res_units", a.res_units),
            ("aug_intensity_scale", a.aug_intensity_scale),
            ("aug_intensity_shift", a.aug_intensity_shift),
            ("loader_workers", a.loader_workers),
        )
        if v is not None
    }
    if a.batch_augment:
        over["batch_augment"] = True
    if a.per_sample_augment:
        over["batch_augment"] = False
    if a.regions:
        over["regions"] = True
    if a.quick:
        over.update(epochs=2, loc_epochs=1, folds=2)
    cfg = SegConfig(manifest=str(manifest), out=str(out / "run"), **over)
    import torch

    meta = {
        "command": "python bench/segmentation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.processor() or 'cpu'}",
        "threads": cfg.num_threads or torch.get_num_threads(),
        "load_start": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    if str(cfg.device) != "cpu" and torch.cuda.is_available():  # the GPU named beside the cores (configuration 15)
        meta["machine"] += f", GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    t0 = time.time()
    if a.shift_only:
        summary = json.loads((out / "run" / "seg_summary.json").read_text())
    else:
        res = train_segmentation(cfg, progress=True, executor=a.executor, workers=a.workers)
        summary = res.summary
        print(res.table, flush=True)
    meta["wall_cv_s"] = time.time() - t0
    shift = None if a.no_shift else shift_check(out / "run", manifest)
    shift_nc = None
    if shift is not None and cfg.coarse_shift_mm > 0:  # the same fold models without their coarse localiser
        print("  the same check without the coarse localiser:", flush=True)
        shift_nc = shift_check(out / "run", manifest, coarse=False)
    meta["wall_s"] = time.time() - t0
    meta["load_end"] = os.getloadavg()[0]
    md = markdown(summary, shift, meta, shift_nc)
    print(md)
    (out / "results.md").write_text(md + "\n")
    (out / "results.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "shift": shift,
                "shift_without_coarse": shift_nc,
                "meta": meta,
                "config": cfg.to_dict(),
            },
            indent=1,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
