"""The study report: ``lgenet report RUN_DIR`` (also written at the end of every ``lgenet run``).

* :mod:`.builder` -- :func:`write_report`: report.html + figure1.png/pdf from a finished run.
* :mod:`.options` -- :class:`ReportOptions`: what the report explains and how.
* :mod:`.sections`, :mod:`.results`, :mod:`.cams` -- the page's sections (cohort, protocol,
  environment; metrics and figures; CAMs with their sanity checks); :mod:`.text` their cell texts.
* :mod:`.figure1` -- the seed's Figure 1 composite (pipelines, AUC bars, CAM examples).
* :mod:`.cohort` -- cohort summary and LGE burden distribution.
* :mod:`.html` -- a self-contained HTML page (inline CSS, embedded images).
"""

from __future__ import annotations

from lgenet.report.builder import write_report
from lgenet.report.options import ReportOptions

__all__ = ["write_report", "ReportOptions"]
