"""Label conventions: which values of a dataset's masks are LV cavity, myocardium and enhancement.

A convention is a :class:`SegLabels`. The named ones:

* :data:`EMIDEC` -- 0 background, 1 LV cavity, 2 normal myocardium, 3 infarct, 4 no-reflow
  (myocardium 2,3,4; enhancement 3,4); the defaults of ``lgenet import``, ``lgenet quantify`` and
  ``lgenet segment``;
* :data:`MYOPS` -- the 200/500/600/1220/2221 convention of other public LGE sets: 200 normal
  myocardium, 500 LV blood pool, 600 RV blood pool (counted as other), 1220 oedema, 2221 scar
  (myocardium 200,1220,2221; enhancement 2221).

:func:`label_convention` turns a name of :data:`LABEL_CONVENTIONS` or a user spec such as
``'cavity=1,myo=2+3+4,lge=3+4,other=0'`` into a convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lgenet.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SegLabels", "EMIDEC", "MYOPS", "LABEL_CONVENTIONS", "label_convention", "labels_of_import"]


@dataclass(frozen=True)
class SegLabels:
    """Which label values of a dataset's masks are LV cavity, myocardium and enhancement.

    ``myo`` is the *whole* myocardium (normal + enhanced, as in ``lgenet import``), ``lge`` the
    enhanced part (infarct/scar and microvascular obstruction), ``other`` values that are allowed and
    mean background (e.g. RV cavity). Any other value in a mask is an error. The field defaults are
    the :data:`EMIDEC` convention: cavity 1, myocardium 2,3,4, enhancement 3,4, other 0.
    """

    cavity: tuple[int, ...] = (1,)
    myo: tuple[int, ...] = (2, 3, 4)
    lge: tuple[int, ...] = (3, 4)
    other: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        for name in ("cavity", "myo", "lge", "other"):
            v = getattr(self, name)
            object.__setattr__(self, name, tuple(int(x) for x in (v if isinstance(v, (list, tuple)) else [v])))
        if not self.myo:
            raise ConfigError("segmentation labels: 'myo' must list the myocardium's label value(s)")
        if not set(self.lge) <= set(self.myo):
            raise ConfigError(
                f"segmentation labels: lge {list(self.lge)} must be a subset of myo {list(self.myo)} "
                "(the enhanced myocardium is part of the myocardium)"
            )
        groups = {"cavity": set(self.cavity), "myo": set(self.myo), "other": set(self.other)}
        for a in groups:
            for b in groups:
                if a < b and groups[a] & groups[b]:
                    raise ConfigError(
                        f"segmentation labels: {a} {sorted(groups[a])} and {b} {sorted(groups[b])} share a value"
                    )

    @classmethod
    def parse(cls, text: str) -> SegLabels:
        """``'cavity=1,myo=2+3+4,lge=3+4,other=0'`` (any order; missing keys keep their defaults)."""
        kw: dict[str, tuple[int, ...]] = {}
        for part in (p.strip() for p in str(text).split(",") if p.strip()):
            key, sep, vals = part.partition("=")
            key = key.strip().lower()
            if not sep or key not in ("cavity", "myo", "lge", "other"):
                raise ConfigError(
                    f"--labels {text!r}: expected KEY=V[+V...] pairs with KEY among cavity, myo, lge, "
                    f"other (e.g. cavity=1,myo=2+3+4,lge=3+4,other=0), got {part!r}"
                )
            try:
                kw[key] = tuple(int(v) for v in vals.split("+") if v.strip() != "")
            except ValueError:
                raise ConfigError(f"--labels {text!r}: values of {key!r} must be integers joined by '+'") from None
        return cls(**kw)

    def to_dict(self) -> dict:
        return {"cavity": list(self.cavity), "myo": list(self.myo), "lge": list(self.lge), "other": list(self.other)}

    @property
    def non_myo(self) -> tuple[int, ...]:
        """Every value that is not myocardium (cavity and other), ascending: what ``lgenet import`` and
        ``lgenet quantify`` call the other labels (EMIDEC: 0, 1)."""
        return tuple(sorted(set(self.cavity) | set(self.other)))

    def classes(self, mask: np.ndarray, *, where: str = "mask") -> np.ndarray:
        """Label map (any values) -> class map (0..3); undeclared values are an error naming them."""
        import numpy as np  # here, not at the top: the CLI's option defaults import this module

        m = np.asarray(mask)
        if m.dtype.kind == "f":
            if not np.all(np.isfinite(m)) or np.any(np.abs(m - np.rint(m)) > 1e-3):
                raise DataError(f"{where}: the label map holds non-integer values; is it an image rather than a mask?")
            m = np.rint(m)
        m = m.astype(np.int64)
        known = set(self.cavity) | set(self.myo) | set(self.other)
        vals, counts = np.unique(m, return_counts=True)
        bad = [(int(v), int(c)) for v, c in zip(vals, counts) if int(v) not in known]
        if bad:
            listed = ", ".join(f"{v} ({c} px)" for v, c in bad[:8])
            raise DataError(
                f"{where}: label value(s) {listed} are not declared; declared cavity {list(self.cavity)}, "
                f"myo {list(self.myo)}, lge {list(self.lge)}, other {list(self.other)}. Pass --labels "
                "(e.g. cavity=1,myo=2+3+4,lge=3+4,other=0) to match the dataset"
            )
        out = np.zeros(m.shape, np.uint8)
        out[np.isin(m, self.cavity)] = 1
        out[np.isin(m, self.myo)] = 2
        out[np.isin(m, self.lge)] = 3
        return out

    def values(self) -> tuple[int, int, int, int]:
        """The label value written for each class in output masks (the first declared one; 0 = background)."""
        healthy = [v for v in self.myo if v not in self.lge] or [self.myo[0]]
        lge = self.lge[0] if self.lge else healthy[0]
        cav = self.cavity[0] if self.cavity else 0
        return (0, cav, healthy[0], lge)


#: EMIDEC: 0 background, 1 LV cavity, 2 normal myocardium, 3 infarct, 4 no-reflow (MVO): the field defaults
EMIDEC = SegLabels()
#: 200 normal myocardium, 500 LV blood pool, 600 RV blood pool (other), 1220 oedema, 2221 scar
MYOPS = SegLabels(cavity=(500,), myo=(200, 1220, 2221), lge=(2221,), other=(0, 600))
LABEL_CONVENTIONS: dict[str, SegLabels] = {"emidec": EMIDEC, "myops": MYOPS}


def label_convention(name_or_spec: str | SegLabels) -> SegLabels:
    """A convention by name (``'emidec'``, ``'myops'``, any case) or from a ``KEY=V[+V...]`` spec
    (:meth:`SegLabels.parse`; keys left out keep the EMIDEC values); a :class:`SegLabels` is returned as is."""
    if isinstance(name_or_spec, SegLabels):
        return name_or_spec
    text = str(name_or_spec).strip()
    if text.lower() in LABEL_CONVENTIONS:
        return LABEL_CONVENTIONS[text.lower()]
    if "=" not in text:
        raise ConfigError(
            f"label convention {text!r}: expected one of {sorted(LABEL_CONVENTIONS)} or KEY=V[+V...] pairs "
            "(e.g. cavity=1,myo=2+3+4,lge=3+4,other=0)"
        )
    return SegLabels.parse(text)


def labels_of_import(options: dict, *, where: str = "the import sidecar") -> SegLabels:
    """The convention an import recorded (the ``options`` of its ``.import.json`` sidecar).

    The LV cavity is ``cavity_labels`` when the import recorded it (since 0.2.0: the 'other' labels that lie
    inside the myocardium's outline); an older sidecar names none, and then label 1 is the cavity when it is
    among the other labels (EMIDEC). Another non-zero 'other' label that cannot be told to be or not to be the
    cavity is refused, naming ``where``: without a cavity class the segmentation would learn none.
    """
    try:
        myo = [int(v) for v in options["myo_labels"]]
        lge = [int(v) for v in options["lge_labels"]]
        other = [int(v) for v in (options.get("other_labels") or [0])]
        recorded = options.get("cavity_labels")
        cavity = [int(v) for v in recorded] if recorded is not None else None
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"{where}: its options do not give the myo_labels, lge_labels and other_labels as integer lists; "
            "pass --labels (e.g. cavity=1,myo=2+3+4,lge=3+4,other=0)"
        ) from None
    if cavity is None:
        cavity = [1] if 1 in other else []
        unclear = [v for v in other if v not in (0, 1)]
        if not cavity and unclear:
            raise ConfigError(
                f"{where} does not say which of the other labels {other} is the LV cavity (it was written before "
                f"0.2.0); pass --labels, e.g. cavity={unclear[0]},myo={'+'.join(map(str, myo))},"
                f"lge={'+'.join(map(str, lge))},other={'+'.join(str(v) for v in other if v != unclear[0])}"
            )
    return SegLabels(
        cavity=tuple(cavity), myo=tuple(myo), lge=tuple(lge), other=tuple(v for v in other if v not in cavity)
    )
