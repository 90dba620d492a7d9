"""Synthetic late-gadolinium-enhancement (LGE) short-axis phantom: geometry and image physics.

One call of :func:`make_phantom` draws one patient's short-axis stack (apex -> base) of
inversion-recovery-like frames ("myocardium nulled"): bright LV and RV blood pools, a dark LV
myocardial ring 8-12 mm thick, a thin dark RV free wall, epicardial fat, chest wall with a
subcutaneous fat band, lungs (dark), liver (intermediate), descending aorta (bright) and spine,
all with mild texture; patchy sarcoid-like enhancement (mid-wall or epicardial blobs, mostly at
the basal septum, the RV insertion points and the inferolateral wall, contiguous across
neighbouring slices); a smooth multiplicative coil bias field; and Rician noise (magnitude of a
complex Gaussian).

Image coordinates: ``x`` grows to the image right (column index), ``y`` grows downwards (row
index); the anterior chest wall is at the top, the RV on the image left (patient right) and the LV
lateral wall on the image right, as on a scanner's standard short-axis display.

Label codes (:data:`LABELS`) of the per-slice label maps:

=====  ==============================================================
``0``  background (everything that is not one of the below, RV free wall included)
``1``  LV cavity (blood pool; papillary muscles are counted in the cavity)
``2``  LV myocardium, normal (nulled)
``3``  LV myocardium, enhanced (LGE)
``4``  RV cavity (blood pool)
=====  ==============================================================

LGE burden = ``100 * #(label 3) / #(labels 2 + 3)`` over the whole stack (:func:`lge_burden`);
the basal-slice burden is the same ratio on the last (basal) slice only.

Everything is a closed-form function of millimetre coordinates evaluated on the pixel grid, so a
phantom is cheap (a few ms for 8 slices of 128 x 128) and fully determined by the generator state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from lgenet.data.phantom_lge import _Blob, _draw_blob, _FourierField, _wrap
from lgenet.errors import ConfigError

__all__ = [
    "LABELS",
    "BACKGROUND",
    "LV_CAVITY",
    "MYOCARDIUM",
    "LGE",
    "RV_CAVITY",
    "PhantomStack",
    "make_phantom",
    "lge_burden",
    "basal_lge_burden",
]

BACKGROUND, LV_CAVITY, MYOCARDIUM, LGE, RV_CAVITY = 0, 1, 2, 3, 4
LABELS: dict[int, str] = {
    BACKGROUND: "background",
    LV_CAVITY: "lv_cavity",
    MYOCARDIUM: "myocardium",
    LGE: "lge",
    RV_CAVITY: "rv_cavity",
}

# Relative signal of each tissue on a late-enhancement inversion-recovery image (blood = 1).
_SIGNAL = {
    "air": 0.0,
    "fat": 0.72,
    "muscle": 0.2,
    "soft": 0.16,
    "lung": 0.035,
    "liver": 0.36,
    "spleen": 0.42,
    "bone": 0.45,
    "blood": 1.0,
    "rv_blood": 0.95,
    "myocardium": 0.045,
    "rv_wall": 0.07,
}


@dataclass(frozen=True)
class PhantomStack:
    """One synthetic short-axis stack, slices ordered apex (index 0) -> base (index -1).

    Attributes:
        image: (S, H, W) float32 signal (arbitrary units, >= 0), noise and bias included.
        labels: (S, H, W) uint8 label map, codes in :data:`LABELS`.
        pixel_spacing: (row, column) spacing in mm.
        slice_spacing: centre-to-centre distance between slices (mm).
        slice_thickness: nominal slice thickness (mm).
        lge_percent: whole-LV LGE burden measured on ``labels`` (%).
        basal_lge_percent: LGE burden of the basal (last) slice (%).
        target_lge_percent: burden the blobs were fitted to (for diagnostics only).
        n_blobs: number of enhancement blobs placed.
        params: the drawn geometry (sizes in mm, angles in degrees), for provenance.
    """

    image: np.ndarray
    labels: np.ndarray
    pixel_spacing: tuple[float, float]
    slice_spacing: float
    slice_thickness: float
    lge_percent: float
    basal_lge_percent: float
    target_lge_percent: float
    n_blobs: int
    params: dict = field(default_factory=dict)

    @property
    def n_slices(self) -> int:
        return int(self.labels.shape[0])


def lge_burden(labels: np.ndarray) -> float:
    """``100 * #LGE / #(myocardium + LGE)`` over the whole array (0.0 when there is no myocardium)."""
    lab = np.asarray(labels)
    n_lge = int(np.count_nonzero(lab == LGE))
    n_myo = n_lge + int(np.count_nonzero(lab == MYOCARDIUM))
    return 100.0 * n_lge / n_myo if n_myo else 0.0


def basal_lge_burden(labels: np.ndarray) -> float:
    """LGE burden of the basal slice of an apex->base (S, H, W) stack (the last slice)."""
    return lge_burden(np.asarray(labels)[-1])


# ----------------------------------------------------------------------------------------------
# helpers


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    if ax <= 0 or ay <= 0:
        return np.zeros(np.broadcast(x, y).shape, dtype=bool)
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 < 1.0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-sd smooth random field (Gaussian-filtered white noise, per slice)."""
    white = rng.standard_normal(shape).astype(np.float32)
    sig = (0.0,) * (len(shape) - 2) + (sigma_px, sigma_px)
    f = ndimage.gaussian_filter(white, sigma=sig, mode="reflect")
    sd = float(f.std())
    return f / sd if sd > 0 else f


def make_phantom(
    rng: np.random.Generator,
    *,
    image_size: int = 128,
    n_slices: int = 6,
    target_lge_percent: float = 0.0,
    fov_mm: float | None = None,
    slice_spacing_mm: float | None = None,
    slice_thickness_mm: float = 8.0,
    noise_sd: float | None = None,
) -> PhantomStack:
    """Draw one synthetic LGE short-axis stack (apex -> base) with its label maps.

    Args:
        rng: NumPy generator; the phantom is a deterministic function of its state and the
            arguments.
        image_size: rows = columns of every frame.
        n_slices: number of short-axis slices (>= 2), apex first, base last.
        target_lge_percent: whole-LV burden the enhancement blobs are fitted to (0 = no LGE).
            The value actually reached is measured on the label maps (``lge_percent``).
        fov_mm: square field of view; default drawn in [180, 215] mm (about 1.5 mm/pixel at 128).
        slice_spacing_mm: centre-to-centre slice distance; default drawn in {8, 9, 10} mm.
        slice_thickness_mm: nominal slice thickness written to the headers.
        noise_sd: Gaussian sd of each complex channel relative to blood signal (default drawn in
            [0.02, 0.04]).

    Returns:
        :class:`PhantomStack`.
    """
    n, S = int(image_size), int(n_slices)
    if S < 2 or n < 16:
        raise ConfigError(
            f"make_phantom needs n_slices >= 2 and image_size >= 16; got n_slices={n_slices!r}, "
            f"image_size={image_size!r}"
        )
    fov = float(rng.uniform(180.0, 215.0)) if fov_mm is None else float(fov_mm)
    dx = round(fov / n, 4)
    spacing = float(rng.choice([8.0, 9.0, 10.0])) if slice_spacing_mm is None else float(slice_spacing_mm)

    # --- per-patient geometry (mm, heart frame angles in rad) ---------------------------------
    r_endo0 = rng.uniform(19.0, 26.0)  # basal endocardial radius
    t0 = rng.uniform(8.0, 12.0)  # basal wall thickness
    theta = rng.uniform(np.deg2rad(-18.0), np.deg2rad(18.0))  # in-plane rotation of the heart
    hx = rng.uniform(-8.0, 14.0)  # heart centre (image frame, mm from image centre)
    hy = rng.uniform(-6.0, 10.0)
    e2, e3 = rng.uniform(0.0, 0.05), rng.uniform(0.0, 0.025)
    psi2, psi3, psit = rng.uniform(0, 2 * np.pi, size=3)
    rv_depth = rng.uniform(0.6, 0.95)  # basal RV depth / LV epicardial radius
    rv_span = np.deg2rad(rng.uniform(85.0, 105.0))  # half angular span of the RV attachment
    rv_centre = np.deg2rad(rng.uniform(-172.0, -158.0))  # septum, slightly anterior
    rv_wall = rng.uniform(2.5, 4.0)
    fat_max, fat_dir = rng.uniform(2.0, 7.0), rng.uniform(-np.pi, np.pi)
    body_ax, body_ay = rng.uniform(160.0, 200.0), rng.uniform(115.0, 140.0)
    body_cx = rng.uniform(-15.0, 15.0)
    # anterior skin a few cm in front of the heart (chest wall + subcutaneous fat + a little fat)
    subcut = rng.uniform(5.0, 18.0)
    muscle = rng.uniform(8.0, 14.0)
    body_cy = hy - (r_endo0 + t0) * (1.0 + rv_depth * 0.3) - subcut - muscle - rng.uniform(6.0, 22.0)
    body_cy += body_ay
    papillary = bool(rng.random() < 0.85)
    blood_sig = rng.uniform(0.9, 1.1)

    # --- grids -----------------------------------------------------------------------------------
    c = (np.arange(n, dtype=np.float64) - (n - 1) / 2.0) * dx
    X = c[None, None, :]  # (1, 1, W)
    Y = c[None, :, None]  # (1, H, 1)
    s = (np.arange(S, dtype=np.float64) / (S - 1))[:, None, None]  # (S, 1, 1): 0 apex, 1 base
    shape = (S, n, n)

    ct, st = np.cos(theta), np.sin(theta)
    Xh = np.broadcast_to(ct * (X - hx) + st * (Y - hy), shape)
    Yh = np.broadcast_to(-st * (X - hx) + ct * (Y - hy), shape)
    rho = np.hypot(Xh, Yh)
    phi = np.arctan2(Yh, Xh)

    # LV: endocardial radius grows apex -> base (strictly, so the basal LV is the largest)
    prof = 0.38 + 0.62 * s**0.8
    r_endo = r_endo0 * prof * (1.0 + e2 * np.cos(2 * (phi - psi2)) + e3 * np.cos(3 * (phi - psi3)))
    thick = t0 * (0.8 + 0.2 * s) * (1.0 + 0.08 * np.cos(phi - psit))
    r_epi = r_endo + thick
    lv_cav = rho < r_endo
    lv_epi = rho < r_epi
    myo = lv_epi & ~lv_cav
    wcoord = np.clip((rho - r_endo) / thick, 0.0, 1.0)

    # RV: crescent attached to the septum (image left), from the anterior to the inferior RV
    # insertion point; its depth grows apex -> base and it is absent at the apex
    Re = r_endo0 * prof + t0 * (0.8 + 0.2 * s)  # mean epicardial radius, (S,1,1)
    g = np.clip((s - 0.1) / 0.9, 0.0, 1.0) ** 0.7
    half_span = rv_span * (0.75 + 0.25 * g)
    psi = _wrap(phi - rv_centre)
    prof_rv = np.sqrt(np.clip(1.0 - (psi / half_span) ** 2, 0.0, None))
    depth = rv_depth * Re * g * prof_rv  # (S,H,W) radial depth of the RV beyond the LV epicardium
    rv_out = (rho >= r_epi) & (rho < r_epi + depth)
    rv_cav = (rho >= r_epi) & (rho < r_epi + depth - rv_wall)
    rv_wall_m = rv_out & ~rv_cav

    # papillary muscles (dark, inside the LV cavity label) in mid-ventricular slices
    pap = np.zeros(shape, dtype=bool)
    if papillary:
        mid = ((s > 0.22) & (s < 0.88)).astype(bool)
        rp = r_endo0 * prof
        for ang in (np.deg2rad(-45.0 + rng.normal(0, 8)), np.deg2rad(118.0 + rng.normal(0, 8))):
            px, py = 0.68 * rp * np.cos(ang), 0.68 * rp * np.sin(ang)
            rad = 0.2 * rp * rng.uniform(0.8, 1.2)
            pap |= (((Xh - px) ** 2 + (Yh - py) ** 2) < rad**2) & mid & lv_cav

    # --- LGE blobs fitted to the target burden ---------------------------------------------------
    myo_idx = np.nonzero(myo)
    n_myo = myo_idx[0].size
    lge = np.zeros(shape, dtype=bool)
    blobs: list[_Blob] = []
    target = float(max(0.0, target_lge_percent))
    if target > 0 and n_myo > 0:
        s_full = np.broadcast_to(s, shape)
        phi_m, w_m, s_m = phi[myo_idx], wcoord[myo_idx], s_full[myo_idx]
        patch = _FourierField(rng)(phi_m, w_m, s_m)
        k = max(1, int(round(target / 100.0 * n_myo)))
        k = min(k, n_myo)
        basal_bias = bool(rng.random() < 0.85)
        F = np.zeros(n_myo)
        n_start = 1 + int(rng.poisson(target / 8.0))
        tau = 0.0
        for i in range(14):
            b = _draw_blob(rng, first=(i == 0), basal_bias=basal_bias)
            blobs.append(b)
            F = np.maximum(F, b.field(phi_m, w_m, s_m))
            if len(blobs) < n_start:
                continue
            Fp = F * (1.0 + 0.3 * patch)
            tau = float(np.partition(Fp, n_myo - k)[n_myo - k])
            if tau >= 0.3:
                break
        Fp = F * (1.0 + 0.3 * patch)
        order = np.argsort(-Fp, kind="stable")[:k]
        sel = np.zeros(n_myo, dtype=bool)
        sel[order] = True
        lge[tuple(a[sel] for a in myo_idx)] = True

    labels = np.zeros(shape, dtype=np.uint8)
    labels[rv_cav] = RV_CAVITY
    labels[lv_cav] = LV_CAVITY
    labels[myo] = MYOCARDIUM
    labels[lge] = LGE

    # --- surrounding anatomy -------------------------------------------------------------------
    sig = np.zeros(shape, dtype=np.float64)
    Xf = np.broadcast_to(X, shape)
    Yf = np.broadcast_to(Y, shape)
    body = _ellipse(Xf, Yf, body_cx, body_cy, body_ax, body_ay)
    inner = _ellipse(Xf, Yf, body_cx, body_cy, body_ax - subcut, body_ay - subcut)
    thorax = _ellipse(Xf, Yf, body_cx, body_cy, body_ax - subcut - muscle, body_ay - subcut - muscle)
    tex = _smooth_noise(rng, shape, sigma_px=max(0.8, 2.5 * 1.5 / dx))
    tex_fine = _smooth_noise(rng, shape, sigma_px=0.7)
    sig[body] = _SIGNAL["fat"]
    sig[inner] = _SIGNAL["muscle"]
    sig[thorax] = _SIGNAL["soft"]

    heart = lv_epi | rv_out
    R_b = r_endo0 + t0
    # lungs: left lung on the image right (beside the lateral wall), right lung upper left
    lungL = _ellipse(Xf, Yf, hx + R_b + 40.0, hy - 8.0, 62.0, 85.0)
    lungR = _ellipse(Xf, Yf, hx - R_b - 55.0, hy - 30.0, 58.0, 70.0)
    # mediastinal soft tissue hugging the heart: lungs are kept a few mm away
    gap = np.empty(shape)
    for k_ in range(S):
        gap[k_] = ndimage.distance_transform_edt(~heart[k_], sampling=(dx, dx))
    fat_t = fat_max * (0.25 + 0.75 * np.clip(np.cos(phi - fat_dir), 0.0, None))
    sig[(lungL | lungR) & thorax & (gap > fat_t + 3.0)] = _SIGNAL["lung"]
    # liver: below the RV / inferior wall, rising toward the apex (diaphragm)
    liv_cy = hy + R_b + 62.0 - 22.0 * (1.0 - s)
    liver = _ellipse(Xf, Yf, hx - 70.0, liv_cy, 95.0, 58.0) & thorax
    sig[liver] = _SIGNAL["liver"] * (1.0 + 0.12 * tex)[liver]
    spleen = _ellipse(Xf, Yf, hx + 85.0, hy + R_b + 75.0 - 15.0 * (1.0 - s), 40.0, 35.0) & thorax
    sig[spleen] = _SIGNAL["spleen"]
    # spine (vertebral body) and descending aorta, posterior
    sp_x, sp_y = body_cx + rng.uniform(-6.0, 6.0), body_cy + body_ay - subcut - muscle - 8.0
    spine = ((Xf - sp_x) ** 2 + (Yf - sp_y) ** 2) < 17.0**2
    sig[spine] = _SIGNAL["bone"] * (1.0 + 0.15 * tex_fine)[spine]
    ao_x, ao_y = sp_x + rng.uniform(14.0, 24.0), sp_y - rng.uniform(26.0, 32.0)
    aorta = ((Xf - ao_x) ** 2 + (Yf - ao_y) ** 2) < rng.uniform(9.0, 12.0) ** 2
    sig[aorta & ~heart] = _SIGNAL["blood"] * 0.95
    # epicardial / pericardial fat (bright, patchy thickness) around the heart
    epi_fat = (~heart) & (gap < fat_t * (1.0 + 0.4 * tex)) & body
    sig[epi_fat] = _SIGNAL["fat"] * (1.0 + 0.08 * tex_fine[epi_fat])

    # heart
    sig[rv_wall_m] = _SIGNAL["rv_wall"]
    sig[rv_cav] = _SIGNAL["rv_blood"] * blood_sig * (1.0 + 0.04 * tex[rv_cav])
    sig[lv_cav] = _SIGNAL["blood"] * blood_sig * (1.0 + 0.04 * tex[lv_cav])
    sig[pap] = _SIGNAL["myocardium"] * 1.3
    sig[myo] = _SIGNAL["myocardium"] * (1.0 + 0.3 * tex_fine[myo])
    if lge.any():
        lge_gain = rng.uniform(0.95, 1.15)
        sig[lge] = blood_sig * lge_gain * (1.0 + 0.08 * tex_fine[lge])
    np.clip(sig, 0.0, None, out=sig)

    # --- acquisition: point spread, coil bias, Rician noise -----------------------------------
    sig = ndimage.gaussian_filter(sig, sigma=(0.0, 0.55, 0.55), mode="nearest")
    u = c / (c[-1] if c[-1] else 1.0)
    U, V = u[None, None, :], u[None, :, None]
    cb = rng.normal(0.0, 1.0, size=5)
    log_bias = 0.18 * (cb[0] * U + cb[1] * V) + 0.1 * (cb[2] * U**2 + cb[3] * V**2 + cb[4] * U * V)
    log_bias = log_bias - 0.22 * V  # anterior (top) surface coil is closer: brighter
    bias = np.exp(log_bias + 0.03 * (s - 0.5))
    sig = sig * bias
    sd = float(rng.uniform(0.02, 0.04)) if noise_sd is None else float(noise_sd)
    re = sig + rng.normal(0.0, sd, size=shape)
    im = rng.normal(0.0, sd, size=shape)
    image = np.hypot(re, im).astype(np.float32)

    lge_pct = lge_burden(labels)
    return PhantomStack(
        image=image,
        labels=labels,
        pixel_spacing=(dx, dx),
        slice_spacing=spacing,
        slice_thickness=float(slice_thickness_mm),
        lge_percent=lge_pct,
        basal_lge_percent=basal_lge_burden(labels),
        target_lge_percent=target,
        n_blobs=len(blobs),
        params={
            "fov_mm": round(dx * n, 3),
            "lv_endo_radius_base_mm": round(float(r_endo0), 2),
            "wall_thickness_base_mm": round(float(t0), 2),
            "rotation_deg": round(float(np.rad2deg(theta)), 2),
            "heart_centre_mm": (round(float(hx), 2), round(float(hy), 2)),
            "noise_sd": round(sd, 4),
            "blobs": [
                {
                    "angle_deg": round(float(np.rad2deg(b.phi)), 1),
                    "wall_depth": round(b.w, 2),
                    "long_axis": round(b.s, 2),
                }
                for b in blobs
            ],
        },
    )
