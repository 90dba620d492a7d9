"""Words of the report pages that said something else than they showed."""

from __future__ import annotations


def test_the_segmentation_gallery_names_the_burden_beside_the_dice():
    from lgenet.report.segmentation import _burden_words

    words = _burden_words({"lge_percent_pred": "12.34", "lge_percent_expert": "10", "dice_lge": "0.11"})
    assert words == "\nLGE 12.3% (expert 10.0%)"
    assert _burden_words({"lge_percent_pred": "", "lge_percent_expert": "3"}) == ""


def test_the_environment_section_says_the_run_time_is_the_grids():
    from lgenet.report.options import ReportOptions
    from lgenet.report.sections import env_section

    html = env_section({"seconds": 162.0, "environment": {}}, "m.csv", ReportOptions())
    assert "Grid time (fits and evaluation" in html and "162.0 s" in html
    assert ">Run time<" not in html
