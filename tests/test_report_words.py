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


def test_the_gallery_shows_the_first_cam_method_that_passes_its_sanity_checks():
    from types import SimpleNamespace as R

    from lgenet.report.cams import choose_method

    fails, passes = R(method="gradcam", passed=False), R(method="hirescam", passed=True)
    assert choose_method("auto", [fails, R(method="gradcam++", passed=None), passes])[0] == "hirescam"
    assert "Grad-CAM fails" in choose_method("auto", [fails, passes])[1]
    assert choose_method("auto", [R(method="gradcam", passed=True), passes]) == ("gradcam", "")
    assert choose_method("auto", [fails]) == ("gradcam", "")  # none passes: the default, flagged by the section
    assert choose_method("gradcam", [fails, passes]) == ("gradcam", "")  # a method asked for is kept


def test_a_wide_table_scrolls_inside_its_column():
    import lgenet.report.html as H

    t = H.table(["a"] * 20, [["x" * 30] * 20])
    assert t.startswith('<div class="tablewrap"><table>') and t.endswith("</table></div>")
    assert ".tablewrap { max-width: 100%; overflow-x: auto; }" in H.CSS


def test_agreement_of_constant_burdens_raises_no_numpy_warning():
    """A segmenter that predicts 0 % for everyone: r is undefined, said as NaN, with no RuntimeWarning on stderr."""
    import math
    import warnings

    import numpy as np

    from lgenet.evaluation.segmentation import agreement

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = agreement(np.zeros(12), np.linspace(0, 20, 12))
    assert math.isnan(a["pearson_r"]) and a["n"] == 12
