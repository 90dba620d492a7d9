"""The phantom's patchy enhancement: sarcoid-like blobs at the typical sites, their shapes and the
smooth fields that make their borders irregular (used by :func:`lgenet.data.phantom.make_phantom`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__: list[str] = []

# Preferred sites of sarcoid-like enhancement: (angle in the heart frame [rad], weight).
# Angles: 0 = lateral (image right), +pi/2 = inferior (down), pi = septum (left), -pi/2 = anterior.
_SITES = (
    (np.pi, 0.34),  # septum
    (np.deg2rad(45.0), 0.24),  # inferolateral
    (np.deg2rad(112.0), 0.14),  # inferior RV insertion point (inferoseptal)
    (np.deg2rad(-100.0), 0.10),  # anterior RV insertion point (anteroseptal)
    (None, 0.18),  # anywhere
)


def _wrap(a: np.ndarray) -> np.ndarray:
    """Wrap angles to [-pi, pi)."""
    return (a + np.pi) % (2.0 * np.pi) - np.pi


class _FourierField:
    """Smooth random field of (phi, w, s) made of a few random cosines (resolution-independent)."""

    def __init__(self, rng: np.random.Generator, n: int = 7):
        self.kphi = rng.integers(2, 9, size=n).astype(np.float64)  # integer: periodic in phi
        self.kw = rng.uniform(-6.0, 6.0, size=n)
        self.ks = rng.uniform(-8.0, 8.0, size=n)
        self.phase = rng.uniform(0.0, 2.0 * np.pi, size=n)
        self.n = n

    def __call__(self, phi: np.ndarray, w: np.ndarray, s: np.ndarray) -> np.ndarray:
        out = np.zeros(np.broadcast(phi, w, s).shape, dtype=np.float64)
        for i in range(self.n):
            out += np.cos(self.kphi[i] * phi + self.kw[i] * w + self.ks[i] * s + self.phase[i])
        return out / np.sqrt(self.n / 2.0)  # ~unit sd


@dataclass
class _Blob:
    phi: float
    sphi: float
    w: float
    sw: float
    s: float
    ss: float
    amp: float

    def field(self, phi: np.ndarray, w: np.ndarray, s: np.ndarray) -> np.ndarray:
        d = (_wrap(phi - self.phi) / self.sphi) ** 2 + ((w - self.w) / self.sw) ** 2
        d = d + ((s - self.s) / self.ss) ** 2
        return self.amp * np.exp(-0.5 * d)


def _draw_blob(rng: np.random.Generator, first: bool, basal_bias: bool) -> _Blob:
    weights = np.array([p for _, p in _SITES])
    site = _SITES[int(rng.choice(len(_SITES), p=weights / weights.sum()))][0]
    phi = rng.uniform(-np.pi, np.pi) if site is None else site + rng.normal(0.0, np.deg2rad(14.0))
    layer = rng.choice(3, p=[0.5, 0.35, 0.15])  # mid-wall, epicardial, sub-endocardial/transmural
    if layer == 0:
        w, sw = rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.34)
    elif layer == 1:
        w, sw = rng.uniform(0.8, 1.0), rng.uniform(0.2, 0.34)
    else:
        w, sw = rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.8)
    if first and basal_bias:
        s = rng.uniform(0.6, 1.05)
    else:
        s = rng.uniform(0.0, 1.0)
    return _Blob(
        phi=float(phi),
        sphi=float(rng.uniform(0.2, 0.45)),
        w=float(w),
        sw=float(sw),
        s=float(s),
        ss=float(rng.uniform(0.14, 0.32)),
        amp=float(rng.uniform(0.85, 1.0)),
    )


# ----------------------------------------------------------------------------------------------
# the phantom
