"""A cohort labelled by quantification: every row of a manifest through
:func:`~lgenet.quantify.files.quantify_files`.

Quantified manifest (:func:`quantify_manifest`)
-----------------------------------------------
Label values and geometry (``myo_labels``, ``other_labels``, ``slice_axis``, ``basal_end``) not
given are read from the manifest's sidecar ``<stem>.import.json`` (written by ``lgenet import``),
else the defaults; explicit values win over the sidecar (with a note). The output
``<stem>.quantified.csv`` gets its own sidecar ``<stem>.quantified.import.json`` with the values
used, so a later command reads them too. Burden columns (all % of myocardium) and their sources;
each burden column ``X`` has a text column ``X_source`` saying where its value comes from:

* ``lge_percent`` -- whole-LV burden by ``label_method`` (the label the ``lge`` task uses);
  ``lge_percent_source`` e.g. ``'nsd5 (auto remote)'`` or ``'fwhm (given remote mask)'``.
* ``lge_percent_<method>`` (``nsd2``, ..., ``fwhm``) -- whole-LV burden by each computed method;
  ``lge_percent_<method>_source`` likewise.
* ``lge_percent_original`` -- the input manifest's ``lge_percent`` (after an import: from the
  expert LGE labels of the mask); its source is the input's ``lge_percent_source`` if it had one,
  else e.g. ``'mask labels [3, 4] / [2, 3, 4], whole LV (import emidec)'``.
* ``lge_percent_basal`` and any other ``lge_percent*`` column of the input -- kept as they are
  (``lge_percent_basal``: the expert labels on the basal slice, NOT the quantification rule);
  source kept from the input or, e.g., ``'mask labels [3, 4] / [2, 3, 4], basal slice (import
  emidec)'``; ``'input manifest (source not recorded)'`` when nothing says.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lgenet.conventions.files import import_sidecar, quantified_manifest
from lgenet.data.manifest import write_manifest
from lgenet.errors import ConfigError, DataError
from lgenet.quantify.files import EMIDEC_LAYOUT, QUANTIFY_DEFAULTS, MaskLayout, QuantifySettings, quantify_files
from lgenet.quantify.methods import _parse_nsd, method_names
from lgenet.utils import atomic_write_text

__all__ = ["manifest_settings", "quantify_manifest"]


def _read_sidecar(manifest: Path) -> dict[str, Any] | None:
    side = import_sidecar(manifest)
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"quantify: sidecar {side} of manifest {manifest} could not be read as JSON ({exc}); "
            "fix it, or delete it and pass --myo-labels/--other-labels"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("options", {}), dict):
        raise ConfigError(
            f"quantify: sidecar {side} has no 'options' object; fix it, or delete it and pass "
            "--myo-labels/--other-labels"
        )
    return data


def _side_labels(side: Path, opts: dict[str, Any], key: str) -> tuple[int, ...] | None:
    v = opts.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise ConfigError(f"quantify: sidecar {side}: '{key}' must be a list of integer label values, got {v!r}")
    return tuple(v)


_OPT = {
    "myo_labels": "--myo-labels",
    "other_labels": "--other-labels",
    "slice_axis": "--slice-axis",
    "basal_end": "--basal-end",
}
_DEFAULTS: dict[str, Any] = {k: getattr(EMIDEC_LAYOUT, k) for k in _OPT}  # EMIDEC's label values, tuples


def manifest_settings(
    manifest: str | Path,
    *,
    myo_labels: Sequence[int] | None = None,
    other_labels: Sequence[int] | None = None,
    slice_axis: int | None = None,
    basal_end: str | None = None,
) -> dict[str, Any]:
    """Label values and geometry for quantifying ``manifest``: given values, else its sidecar's.

    A value left ``None`` comes from the sidecar ``<stem>.import.json``
    (:func:`lgenet.conventions.files.import_sidecar`) when it records one, else from the defaults
    (EMIDEC: myocardium 2,3,4; other 0,1; slice axis 2; basal end last). A given value that differs from the sidecar wins, with a note. Returns a dict with
    ``myo_labels``, ``other_labels``, ``slice_axis``, ``basal_end``, ``lge_labels`` (the import's,
    or ``None``), ``source`` (per key: 'given', 'sidecar' or 'default'), ``sidecar`` (path or
    ``None``), ``side`` (its content or ``None``) and ``notes`` (lines to show the user).

    Raises:
        ConfigError: unreadable sidecar, or myocardium and other values overlap; when one of them
            comes from the sidecar the message says to pass the other explicitly.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ConfigError(f"quantify: manifest {manifest} does not exist")
    side = _read_sidecar(manifest)
    side_p = import_sidecar(manifest)
    opts = (side or {}).get("options", {}) or {}
    given = {
        "myo_labels": None if myo_labels is None else tuple(int(v) for v in myo_labels),
        "other_labels": None if other_labels is None else tuple(int(v) for v in other_labels),
        "slice_axis": slice_axis,
        "basal_end": basal_end,
    }
    from_side: dict[str, Any] = {}
    if side is not None:
        for k in ("myo_labels", "other_labels"):
            from_side[k] = _side_labels(side_p, opts, k)
        if opts.get("slice_axis") is not None:
            if opts["slice_axis"] not in (0, 1, 2):
                raise ConfigError(
                    f"quantify: sidecar {side_p}: 'slice_axis' must be 0, 1 or 2, got {opts['slice_axis']!r}"
                )
            from_side["slice_axis"] = opts["slice_axis"]
        if opts.get("basal_end") is not None:
            if opts["basal_end"] not in ("first", "last"):
                raise ConfigError(
                    f"quantify: sidecar {side_p}: 'basal_end' must be 'first' or 'last', got {opts['basal_end']!r}"
                )
            from_side["basal_end"] = opts["basal_end"]
    lge = _side_labels(side_p, opts, "lge_labels") if side is not None else None

    out: dict[str, Any] = {}
    source: dict[str, str] = {}
    notes: list[str] = []
    for k in ("myo_labels", "other_labels", "slice_axis", "basal_end"):
        sv = from_side.get(k)
        if given[k] is not None:
            out[k], source[k] = given[k], "given"
            if sv is not None and sv != given[k]:
                notes.append(
                    f"note: {_OPT[k]} {_show(given[k])} overrides {k} {_show(sv)} of {side_p.name} "
                    "(explicit values win over the sidecar)"
                )
        elif sv is not None:
            out[k], source[k] = sv, "sidecar"
        else:
            out[k], source[k] = _DEFAULTS[k], "default"
    myo, other = set(out["myo_labels"]), set(out["other_labels"])
    if not myo:
        raise ConfigError("quantify: --myo-labels must list at least one label value")
    if myo & other:
        both = sorted(myo & other)
        sm, so = source["myo_labels"], source["other_labels"]
        if sm == so == "sidecar":
            fix = f"the sidecar {side_p} declares them as both; fix it or pass --myo-labels and --other-labels"
        elif sm == so == "given":
            fix = "a label value is either myocardium or other"
        else:
            mine, theirs = ("myo_labels", "other_labels") if sm == "given" else ("other_labels", "myo_labels")
            origin = f"read from {side_p}" if source[theirs] == "sidecar" else "(the default)"
            fix = (
                f"{_OPT[mine]} contradicts {theirs} {_show(out[theirs])} {origin}; pass {_OPT[theirs]} as well "
                "(explicit values win)"
            )
        raise ConfigError(
            f"quantify: myocardium labels {_show(out['myo_labels'])} and other labels "
            f"{_show(out['other_labels'])} overlap ({both}); {fix}"
        )
    took = [k for k in source if source[k] == "sidecar"]
    if took:
        notes.insert(
            0, f"from the manifest's sidecar {side_p.name}: " + ", ".join(f"{k} {_show(out[k])}" for k in took)
        )
    dflt = [k for k in source if source[k] == "default"]
    if dflt:
        where = (
            f"not recorded in {side_p.name}, using defaults"
            if side is not None
            else f"no sidecar {side_p.name} beside the manifest; using defaults"
        )
        notes.append(f"{where}: " + ", ".join(f"{k} {_show(out[k])}" for k in dflt))
    if lge is not None and not set(lge) <= myo:
        notes.append(
            f"note: LGE label(s) {sorted(set(lge) - myo)} of the import are not in the myocardium labels "
            f"{_show(out['myo_labels'])}; those voxels are not counted as myocardium"
        )
    return {
        **out,
        "lge_labels": lge,
        "source": source,
        "sidecar": side_p if side is not None else None,
        "side": side,
        "notes": notes,
    }


def _show(v: Any) -> str:
    return str(list(v)) if isinstance(v, tuple) else str(v)


def quantify_manifest(
    manifest: str | Path,
    out_dir: str | Path,
    *,
    label_method: str,
    given: Mapping[str, Any] | None = None,
    settings: QuantifySettings = QUANTIFY_DEFAULTS,
    remote: None | str = None,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Label a cohort from myocardium contours: quantify every row's NIfTI image + ``mask``.

    For each manifest row with a ``mask`` (NIfTI label map on the image's grid), runs
    :func:`quantify_files` into ``out_dir/cases`` and writes ``out_dir/<manifest stem>.quantified.csv``:
    the same rows and columns with absolute paths, ``lge_percent`` replaced by the whole-LV burden of
    ``label_method`` (e.g. ``'fwhm'``, ``'nsd5'``), one ``lge_percent_<method>`` column per computed
    method, the previous value kept as ``lge_percent_original``, and an ``X_source`` column for every
    burden column ``X`` (see the module docstring), plus the sidecar
    ``<stem>.quantified.import.json``. Choose ``label_method`` knowingly: see the EMIDEC agreement
    table in docs/results.md. Returns the new manifest's path.

    Args:
        given: the mask layout values given explicitly (keys ``myo_labels``, ``other_labels``,
            ``slice_axis``, ``basal_end``; a value ``None`` or a key left out = from the manifest's
            sidecar, else the defaults); see :func:`manifest_settings`.
        settings: the methods (must yield ``label_method``) and their options;
            ``settings.remote_labels``: label values of the ``remote`` column's masks that mark
            remote myocardium.
        remote: ``None``/``'auto'`` only: one remote mask cannot serve every row. Per-row remote masks
            go in an optional ``remote`` column (blank cell = automatic remote for that row).
        echo: called with each note on where the label values came from (the CLI prints them),
            once the options are checked and before the cases run; the notes also go in the sidecar.
    """
    import csv
    import io
    from datetime import datetime, timezone

    manifest = Path(manifest)
    method, n_sd = settings.method, settings.n_sd
    fwhm_baseline, remote_labels = settings.fwhm_baseline, settings.remote_labels
    if remote is not None and not (isinstance(remote, str) and remote == "auto"):
        raise ConfigError(
            f"quantify --manifest: --remote {remote} names one mask, which cannot apply to every row; "
            "give one remote mask per row in a 'remote' column of the manifest (blank = automatic), "
            "or leave --remote out for the automatic rule"
        )
    if not manifest.is_file():
        raise ConfigError(f"quantify: manifest {manifest} does not exist")
    names = method_names(method, n_sd)
    if label_method not in names:
        all_names = method_names("all", n_sd)
        if label_method in all_names:
            raise ConfigError(
                f"quantify: --label-method {label_method} is not computed by --method {_method_text(method)} "
                f"(computed: {names}); add its method to --method or choose one of {names}"
            )
        raise ConfigError(f"quantify: label_method must be one of {names}, got {label_method!r}")
    cfg = manifest_settings(manifest, **dict(given or {}))
    text = manifest.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    header = [h for h in (reader.fieldnames or []) if h]
    rows = list(reader)
    if not rows or "image" not in header or "mask" not in header:
        raise ConfigError(f"quantify: manifest {manifest} needs 'image' and 'mask' columns and at least one row")
    has_remote = "remote" in header and any((r.get("remote") or "").strip() for r in rows)
    if remote_labels is not None and not has_remote:
        raise ConfigError(
            f"quantify --manifest: --remote-labels needs remote masks, but manifest {manifest} has no "
            "'remote' column (or it is blank on every row); put one remote mask per row in a 'remote' "
            "column, or leave --remote-labels out for the automatic rule"
        )
    side = cfg["side"] or {}
    dataset = side.get("dataset")
    if echo is not None:
        for line in cfg["notes"]:
            echo(line)

    def given_source(col: str) -> str:
        lge_l, myo_l = cfg["lge_labels"], (side.get("options") or {}).get("myo_labels")
        where = {"lge_percent": "whole LV", "lge_percent_basal": "basal slice"}.get(col)
        if where and lge_l is not None and myo_l is not None:
            return f"mask labels {list(lge_l)} / {list(myo_l)}, {where} (import {dataset or 'unknown'})"
        return "input manifest (source not recorded)"

    layout = MaskLayout(
        myo_labels=cfg["myo_labels"],
        other_labels=cfg["other_labels"],
        slice_axis=cfg["slice_axis"],
        basal_end=cfg["basal_end"],
    )
    base = manifest.resolve().parent
    out_dir = Path(out_dir)
    produced = {"lge_percent", "lge_percent_original"} | {f"lge_percent_{n}" for n in names}
    burden_in = [c for c in header if c.startswith("lge_percent") and not c.endswith("_source")]
    skip_src = {f"{c}_source" for c in produced | set(burden_in)}

    def absolute(cell: str) -> Path:
        p = Path(cell)
        return p if p.is_absolute() else base / p

    cache: dict[tuple[str, str, str], dict[str, Any]] = {}
    out_rows = []
    for i, row in enumerate(rows, start=1):
        pid = row.get("patient_id") or f"row{i}"
        if not (row.get("mask") or "").strip():
            raise DataError(
                f"quantify: manifest {manifest}, row {i} (patient {pid}): no mask; every row needs a "
                "myocardium label map to be quantified"
            )
        ip, mp = absolute(row["image"]), absolute(row["mask"])
        rcell = (row.get("remote") or "").strip() if has_remote else ""
        rp = absolute(rcell) if rcell else None
        key = (str(ip.resolve()), str(mp.resolve()), str(rp.resolve()) if rp else "")
        if key not in cache:
            cache[key] = quantify_files(
                ip,
                mp,
                out_dir / "cases",
                layout=layout,
                settings=dataclasses.replace(settings, remote_labels=remote_labels if rp else None),
                remote=rp,
                case_id=pid,
            )
        s = cache[key]
        rule = "given remote mask" if rp else "auto remote"
        new: dict[str, Any] = {}
        for c in header:
            if c in produced or c in skip_src:
                continue
            new[c] = row.get(c)
            if c in burden_in:
                new[f"{c}_source"] = row.get(f"{c}_source") or given_source(c)
        new["image"], new["mask"] = key[0], key[1]
        if "remote" in header:
            new["remote"] = key[2]
        new["lge_percent"] = round(s["percent"][label_method], 4)
        new["lge_percent_source"] = f"{label_method} ({rule})"
        if "lge_percent" in header:
            new["lge_percent_original"] = row.get("lge_percent")
            new["lge_percent_original_source"] = row.get("lge_percent_source") or given_source("lge_percent")
        for n in names:
            new[f"lge_percent_{n}"] = round(s["percent"][n], 4)
            new[f"lge_percent_{n}_source"] = f"{n} ({rule})"
        out_rows.append(new)
    out = quantified_manifest(manifest, out_dir)
    write_manifest(out, out_rows, columns=None)
    defs = dict(side.get("definitions") or {})
    defs.update(
        {
            "lge_percent": f"whole-LV burden (%) by {label_method} (lgenet quantify); remote rule per row in "
            "lge_percent_source",
            **{f"lge_percent_{n}": f"whole-LV burden (%) by {n} (lgenet quantify)" for n in names},
            "X_source": "for every burden column X: where its value comes from",
        }
    )
    if "lge_percent" in header:
        defs["lge_percent_original"] = "the input manifest's lge_percent (source in lge_percent_original_source)"
    opts = {
        k: (list(cfg[k]) if isinstance(cfg[k], tuple) else cfg[k])
        for k in ("myo_labels", "other_labels", "slice_axis", "basal_end")
    }
    opts["lge_labels"] = list(cfg["lge_labels"]) if cfg["lge_labels"] is not None else None
    if "lge_threshold" in (side.get("options") or {}):
        opts["lge_threshold"] = side["options"]["lge_threshold"]
    new_side = {
        "dataset": dataset,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": str(out.resolve()),
        "derived_from": {
            "manifest": str(manifest.resolve()),
            "sidecar": str(cfg["sidecar"].resolve()) if cfg["sidecar"] else None,
            "options": side.get("options"),
        },
        "options": opts,
        "label_sources": cfg["source"],
        "quantify": {
            "label_method": label_method,
            "method": _method_text(method),
            "methods": names,
            "n_sd": [float(n) for n in _parse_nsd(n_sd)],
            "fwhm_baseline": fwhm_baseline,
            "remote": "per-row 'remote' column (blank = auto)" if has_remote else "auto",
            "remote_labels": list(remote_labels) if remote_labels is not None else None,
        },
        "definitions": defs,
        "label_notes": cfg["notes"],
        **({"notes": side["notes"]} if side.get("notes") else {}),
    }
    atomic_write_text(import_sidecar(out), json.dumps(new_side, indent=2) + "\n")
    return out


def _method_text(method: str | Sequence[str]) -> str:
    return method if isinstance(method, str) else ",".join(method)
