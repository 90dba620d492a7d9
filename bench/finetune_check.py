"""How much `lgenet segment finetune` recovers on a proxy centre, and how many corrected cases it takes.

    python bench/finetune_check.py --run runs/bench/seg_base/run --out runs/bench/finetune
    python bench/finetune_check.py --run RUN --out DIR --members 0 --k 10 --limit-test 4   # a check of the script

The proxy centre: each EMIDEC patient held out by fold model m of a finished run, under
lgenet.data.centre_shift's "another centre (all)" by default, or --condition (thick slices, whole-thorax canvas, edge artefacts, circular
field of view, 0-3800 intensities; one seeded draw per patient, the draw bench/centre_check.py scores), written
as NIfTI stacks with their expert masks moved the same way. Fold model m never saw these patients, so it is the
source (a one-member run); the other fold models, which did, play no part.

Per fold model: the held-out patients are shuffled (seeded); the first k are the "corrected" cases, the last
--n-test the test cases (the same test cases for every k). `segment finetune` runs on the k cases (own folds:
min(5, k)) and its adapted run segments the test cases; so does the source. Reported: myocardium Dice,
hearts found (>= 0.5), LGE % ICC and limits of agreement on the test cases, source vs fine-tuned, per k; the
own-fold estimate the command itself reports on its k cases beside what the test cases show. Markdown to stdout
and <out>/finetune.md, JSON to <out>/finetune.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lgenet.data.centre_shift import CENTRE_SHIFTS  # noqa: E402

CONDITION = "another centre (all)"  # the default proxy centre (--condition)


def _write_stack(path: Path, arr: np.ndarray, spacing, slice_mm: float, dtype) -> None:
    """(S, rows, cols), apex -> base, as lgenet's NIfTI reader reads it back (slice axis 2, base last)."""
    import nibabel as nib

    data = np.transpose(arr, (2, 1, 0)).astype(dtype)
    aff = np.diag([float(spacing[1]), float(spacing[0]), float(slice_mm), 1.0])
    nib.save(nib.Nifti1Image(data, aff), str(path))


def proxy_cases(run: Path, member: int, out: Path, condition: str = CONDITION) -> list[dict]:
    """The proxy-centre stacks of fold model ``member``'s held-out patients: [{patient_id, image, mask, lge}]."""
    from lgenet.data.manifest import load_manifest
    from lgenet.evaluation.segmentation import class_measures
    from lgenet.runs.seg import SegRunDir
    from lgenet.segment.cases import cases_of, read_case

    rd = SegRunDir(run)
    cfg = rd.load_config()
    folds = rd.read_folds("seg")
    cases = [
        c for c in cases_of(load_manifest(cfg.manifest, tasks=None), need_masks=True) if folds[c.patient_id] == member
    ]
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in cases:
        st = read_case(c, cfg)
        slice_mm = float(st.meta.get("slice_spacing") or st.meta.get("slice_thickness") or 10.0)
        rng = np.random.default_rng(zlib.crc32(f"{c.patient_id}|{condition}".encode()))
        img, cls, sp, smm = CENTRE_SHIFTS[condition](st.image.astype(np.float32), st.classes, st.spacing, slice_mm, rng)
        if not (cls >= 2).any():
            continue  # the expert myocardium left the proxy's field of view: nothing to correct
        image, mask = out / f"{c.patient_id}.nii.gz", out / f"{c.patient_id}_mask.nii.gz"
        _write_stack(image, img, sp, smm, np.int16)
        _write_stack(mask, cls, sp, smm, np.uint8)  # classes: EMIDEC's 0-3 values (no MVO class)
        rows.append(
            {
                "patient_id": c.patient_id,
                "image": str(image.resolve()),
                "mask": str(mask.resolve()),
                "lge": class_measures(cls)["lge_percent"],
            }
        )
    return rows


def one_member_run(run: Path, member: int, out: Path) -> Path:
    """A segmentation run holding fold model ``member`` only (members.json; its config, quality score, profile)."""
    from lgenet.runs.seg import SegRunDir

    rd = SegRunDir(run)
    cfg = rd.load_config()
    if out.exists():
        shutil.rmtree(out)
    (out / "fits" / "seg").mkdir(parents=True)
    shutil.copytree(rd.fold_dir(member), out / "fits" / "seg" / f"fold{member}")
    for name in ("quality.json", "profile.json"):
        if (run / name).is_file():
            shutil.copyfile(run / name, out / name)
    SegRunDir(out).write_config(cfg.replace(out=str(out)))
    (out / "members.json").write_text(json.dumps({"members": [member]}))
    return out


def _manifest(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "image", "mask"])
        for r in rows:
            w.writerow([r["patient_id"], r["image"], r["mask"]])
    return path


def _scores(ev: dict, dice_all) -> dict:
    """The evaluation's numbers, with the myocardium Dice over every mask (refused ones too, their mask as the
    network drew it): the evaluation's own Dice is over the measured masks only, which a refusal flatters."""
    a = ev.get("agreement", {})
    d = np.array([float(v) for v in dice_all], float)
    return {
        "n": ev["n_labelled"],
        "dice_myo": {"mean": float(np.nanmean(d)), "n": int(np.isfinite(d).sum())},
        "dice_myo_measured": ev["dice_myo"],
        "found": ev.get("hearts_found"),
        "refused": ev["n_refused"],
        "icc": a.get("icc"),
        "loa": [a.get("loa_lower"), a.get("loa_upper")],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a finished segmentation run on EMIDEC")
    ap.add_argument("--out", required=True)
    ap.add_argument("--members", type=int, nargs="+", help="fold models to use (default: all)")
    ap.add_argument("--k", type=int, nargs="+", default=[10], help="corrected cases to fine-tune on (default 10)")
    ap.add_argument("--n-test", type=int, default=12, help="test cases per fold model (default 12)")
    ap.add_argument("--limit-test", type=int, help="only this many test cases (a check of the script)")
    ap.add_argument("--epochs", type=int, help="FinetuneConfig.epochs (default: its default)")
    ap.add_argument(
        "--loc-epochs", type=int, help="FinetuneConfig.loc_epochs (0: keep the localisers; default: its default)"
    )
    ap.add_argument(
        "--condition",
        choices=sorted(CENTRE_SHIFTS),
        default=CONDITION,
        help=f"the proxy of lgenet.data.centre_shift the centre is made with (default: {CONDITION!r})",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    import torch

    from lgenet import __version__
    from lgenet.config.finetune import FinetuneConfig
    from lgenet.runs.seg import SegRunDir
    from lgenet.segment import SegApplyOptions, apply_segmentation
    from lgenet.segment.finetune import finetune_segmentation

    torch.set_num_threads(a.threads)
    run, out = Path(a.run), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    n_members = SegRunDir(run).load_config().folds
    meta = {
        "command": "python bench/finetune_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "run": str(run),
        "condition": a.condition,
        "lgenet": __version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "threads": a.threads,
        "load_start": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    t0 = time.time()
    res: dict = {}
    labels = {"cavity": [1], "myo": [2, 3], "lge": [3], "other": [0]}  # the proxy masks hold classes 0-3
    spec = "cavity=1,myo=2+3,lge=3,other=0"
    for m in a.members if a.members is not None else range(n_members):
        base = out / f"member{m}"
        cases = proxy_cases(run, m, base / "proxy", a.condition)
        order = np.random.default_rng(a.seed + m).permutation(len(cases))
        cases = [cases[i] for i in order]
        test = cases[-a.n_test :][: a.limit_test or None]
        source = one_member_run(run, m, base / "source")
        test_csv = _manifest(base / "test.csv", test)
        ap_src = apply_segmentation(
            source,
            SegApplyOptions(out=base / "apply_source", manifest=test_csv, progress=False, overlays=False, labels=spec),
        )
        res[f"member {m}"] = {"source": _scores(ap_src.evaluation, [r["dice_myo"] for r in ap_src.rows]), "k": {}}
        for k in a.k:
            train = cases[:k]
            assert not {r["patient_id"] for r in train} & {r["patient_id"] for r in test}
            over = {"epochs": a.epochs} if a.epochs else {}
            if a.loc_epochs is not None:
                over["loc_epochs"] = a.loc_epochs
            fc = FinetuneConfig(
                model=str(source),
                manifest=str(_manifest(base / f"corrected_{k}.csv", train)),
                out=str(base / f"finetune_{k}"),
                labels=labels,
                folds=min(5, k),
                seed=a.seed,
                num_threads=a.threads,
                **over,
            )
            t1 = time.time()
            ft = finetune_segmentation(fc, progress=False)
            ap = apply_segmentation(
                fc.out,
                SegApplyOptions(
                    out=base / f"apply_{k}", manifest=test_csv, progress=False, overlays=False, labels=spec
                ),
            )
            with open(Path(fc.out) / "finetune_rows.csv", newline="") as fh:
                own = list(csv.DictReader(fh))
            res[f"member {m}"]["k"][k] = {
                "finetuned": _scores(ap.evaluation, [r["dice_myo"] for r in ap.rows]),
                "own_fold_estimate": _scores(ft.summary["finetuned"], [r["dice_myo"] for r in own]),
                "own_fold_source": _scores(ft.summary["source"], [r["dice_myo_source"] for r in own]),
                "minutes": round((time.time() - t1) / 60, 1),
            }
            print(f"member {m}, k={k}: {json.dumps(res[f'member {m}']['k'][k], default=float)}", flush=True)
    meta["wall_s"] = time.time() - t0
    meta["load_end"] = os.getloadavg()[0]
    (out / "finetune.json").write_text(json.dumps({"meta": meta, "results": res}, indent=1, default=float))
    md = markdown(res, meta)
    print(md)
    (out / "finetune.md").write_text(md + "\n")
    return 0


def _d(s: dict) -> str:
    d = s["dice_myo"]
    return "n/a" if d.get("mean") is None else f"{d['mean']:.3f}"


def markdown(res: dict, meta: dict) -> str:
    L = [
        f"Command: `{meta['command']}`  ",
        f"Run: `{meta['run']}` (lgenet {meta['lgenet']}); proxy centre: {meta.get('condition', CONDITION)}  ",
        f"Machine: {meta['machine']}; {meta['threads']} torch thread(s); load {meta['load_start']:.2f} at the start, "
        f"{meta['load_end']:.2f} at the end; {meta['wall_s'] / 60:.1f} min; {meta['date']}",
        "",
        "Dice: the mean over every mask (refused ones too); found: Dice >= 0.5; refused: no number reported; ICC and "
        "limits of agreement over the measured masks.",
        "",
        "| source fold model | k corrected | test n | source: Dice / found / refused / ICC / LoA | fine-tuned: Dice / "
        "found / refused / ICC / LoA | own-fold estimate on the k (Dice, source → fine-tuned) | minutes |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(s: dict) -> str:
        icc = "n/a" if s["icc"] is None else f"{s['icc']:.3f}"
        loa = "n/a" if s["loa"][0] is None else f"{s['loa'][0]:+.1f} to {s['loa'][1]:+.1f}"
        return f"{_d(s)} / {s['found']} / {s['refused']} / {icc} / {loa}"

    for name, r in res.items():
        for k, v in r["k"].items():
            L.append(
                f"| {name} | {k} | {r['source']['n']} | {row(r['source'])} | {row(v['finetuned'])} | "
                f"{_d(v['own_fold_source'])} → {_d(v['own_fold_estimate'])} | {v['minutes']} |"
            )
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
