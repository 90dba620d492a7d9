"""Image-derived measures: the outcome models' names for the columns of ``segmentation.csv`` /
``seg_metrics.csv`` (``lgenet segment``), what each means, and the default set."""

from __future__ import annotations

__all__ = ["IMAGE_MEASURES", "MEASURE_DESCRIPTIONS", "DEFAULT_MEASURES"]

#: measure name -> the segmentation table's column it is read from
IMAGE_MEASURES: dict[str, str] = {
    "img_lge_percent": "lge_percent_pred",
    "img_lge_percent_basal": "lge_percent_basal_pred",
    "img_lge_mass_g": "enh_mass_g_pred",
    "img_myo_mass_g": "myo_mass_g_pred",
    "img_cavity_ml": "cavity_ml_pred",
    "img_lge_slices": "slices_with_enhancement_pred",
    "img_lge_sectors": "lge_sectors_pred",
    "img_transmurality_max": "transmurality_max_pred",
    "img_transmurality_mean": "transmurality_mean_pred",
}
MEASURE_DESCRIPTIONS: dict[str, str] = {
    "img_lge_percent": "LGE % of the LV myocardium (whole stack)",
    "img_lge_percent_basal": "LGE % of the basal slice's myocardium",
    "img_lge_mass_g": "enhanced myocardium, g (1.05 g/ml)",
    "img_myo_mass_g": "LV myocardial mass, g (1.05 g/ml)",
    "img_cavity_ml": "LV cavity volume, ml (summed slices)",
    "img_lge_slices": "slices with enhancement",
    "img_lge_sectors": "60-degree sectors with >= 5% enhanced (extent; not AHA-anchored)",
    "img_transmurality_max": "maximum transmural extent of enhancement, %",
    "img_transmurality_mean": "mean transmural extent over enhanced rays, %",
}
#: the measures fusion models use unless told otherwise (chosen before any outcome was looked at:
#: burden, scar mass, LV mass and size, the deepest scar)
DEFAULT_MEASURES = ("img_lge_percent", "img_lge_mass_g", "img_myo_mass_g", "img_cavity_ml", "img_transmurality_max")
