"""Semi-automatic LGE quantification: enhanced fraction of the myocardium by n-SD and FWHM.

* :mod:`lgenet.quantify.methods` -- the algorithm on arrays (:func:`quantify`, the automatic remote
  myocardium :func:`auto_remote_mask`); its docstring states the methods and their conventions;
* :mod:`lgenet.quantify.files` -- one NIfTI image + label map (:func:`quantify_files`), with the mask's
  layout (:class:`MaskLayout`) and the methods' options (:class:`QuantifySettings`);
* :mod:`lgenet.quantify.manifest` -- a whole manifest (:func:`quantify_manifest`), its label values read
  from the import sidecar (:func:`manifest_settings`).
"""

from __future__ import annotations

from lgenet.quantify.files import EMIDEC_LAYOUT, QUANTIFY_DEFAULTS, MaskLayout, QuantifySettings, quantify_files
from lgenet.quantify.manifest import manifest_settings, quantify_manifest
from lgenet.quantify.methods import (
    AHA_SECTORS,
    DEFAULT_N_SD,
    METHODS,
    MethodResult,
    QuantifyResult,
    SectorRule,
    auto_remote_mask,
    method_names,
    quantify,
)

__all__ = [
    "MethodResult",
    "QuantifyResult",
    "SectorRule",
    "AHA_SECTORS",
    "MaskLayout",
    "QuantifySettings",
    "EMIDEC_LAYOUT",
    "QUANTIFY_DEFAULTS",
    "quantify",
    "quantify_files",
    "quantify_manifest",
    "manifest_settings",
    "auto_remote_mask",
    "method_names",
    "DEFAULT_N_SD",
    "METHODS",
]
