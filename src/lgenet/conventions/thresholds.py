"""Thresholds that define the study's labels."""

from __future__ import annotations

__all__ = ["LGE_THRESHOLD"]

#: task ``lge`` is positive when the LGE burden exceeds this share of the LV myocardium, in percent (the seed
#: study's cut-off: Azoulay, Mei, Fauveau et al., LGE > 5.7 % of the myocardium)
LGE_THRESHOLD = 5.7
