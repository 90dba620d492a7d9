"""The study report: ``lgenet report RUN_DIR`` (also written at the end of every ``lgenet run``).

* :mod:`.builder` -- :func:`write_report`: report.html + figure1.png/pdf from a finished run.
* :mod:`.figure1` -- the seed's Figure 1 composite (pipelines, AUC bars, CAM examples).
* :mod:`.cohort` -- cohort summary and LGE burden distribution.
* :mod:`.html` -- a self-contained HTML page (inline CSS, embedded images).
"""

from __future__ import annotations

from lgenet.report.builder import ReportOptions, write_report

__all__ = ["write_report", "ReportOptions"]
