"""Parity with Keras itself: lgenet's Keras-weight loader gives the network Keras has.

``keras.applications.ResNet50`` / ``InceptionV3`` (``weights=None, include_top=False``, seeded
kernels) get random BatchNorm statistics, gammas, betas and conv biases (so that every one of them
matters), are saved in every HDF5 layout users hold, loaded with lgenet (h5py only), and their
feature maps compared on the same input: max |lgenet - keras| <= 1e-4 x max |keras| at 224
(ResNet50) and 299 px (InceptionV3), plus one odd size each, and on the full preprocessing path of a
uint8 grayscale image (Keras' own ``imagenet_utils.preprocess_input`` then 1/255).

The Keras 2 layouts (the official RadImageNet ``model.save`` files; Keras' ImageNet ``..._notop.h5``
weights-only files) are written with h5py from the Keras model's own layer and weight names exactly
as Keras 2 writes them, because Keras 3 writes only its own spellings; the Keras 3 layouts are written
by Keras 3; if ``tf_keras`` (Keras 2) is installed, its own ``model.save``/``save_weights`` files
are checked too.

The Keras side runs in a subprocess (this file run as a script): TensorFlow must never be imported
into the pytest process, because importing ``triton`` (which ``torch._dynamo`` does, e.g. through
torchvision) after TensorFlow crashes the interpreter. Needs the ``[interop]`` extra
(``tensorflow-cpu``, ``keras``); skipped without it. Prints one ``PARITY`` line per comparison
(run with ``-s`` to see them; docs/results.md records them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

_WHY = "Keras parity tests need the [interop] extra: pip install -e '.[interop]' (tensorflow-cpu, keras)"
_HAVE_KERAS = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "keras"))
pytestmark = [pytest.mark.interop, pytest.mark.skipif(not _HAVE_KERAS, reason=_WHY)]

TOL = 1e-4  # max abs difference relative to the feature scale (max |keras feature|)
SIZES = {"resnet50": (224, 197), "inception_v3": (299, 211)}
N_TENSORS = {"resnet50": 318, "inception_v3": 376}
LAYOUTS = {
    "keras2-full": "full.h5",
    "keras2-weights": "weights.h5",
    "keras3-h5": "k3.h5",
    "keras3-weights": "k3.weights.h5",
}


# =========================================================================== Keras side (subprocess)
def _short(weight_name: str) -> str:
    """'kernel' from Keras 3 'kernel' or Keras 2 'conv1_conv/kernel:0'."""
    return weight_name.split("/")[-1].split(":")[0]


def _gray_image(size: int, seed: int) -> np.ndarray:
    """A uint8 grayscale image with structure (a smooth pattern, noise and a bright disc)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = 90 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + rng.normal(0, 20, (size, size))
    img[(yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 6) ** 2] += 80
    return np.clip(img, 0, 255).astype(np.uint8)


def _randomise(model, seed: int, kl) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if isinstance(layer, kl.BatchNormalization):
            new = []
            for w, v in zip(layer.weights, ws):
                role = _short(w.name)
                if role == "gamma":
                    new.append(rng.uniform(0.5, 1.5, v.shape))
                elif role == "moving_variance":
                    new.append(rng.uniform(0.5, 2.0, v.shape))
                else:  # beta, moving_mean
                    new.append(rng.normal(0.0, 0.3, v.shape))
            layer.set_weights([a.astype(np.float32) for a in new])
        elif isinstance(layer, kl.Conv2D) and len(ws) == 2:
            layer.set_weights([ws[0], rng.normal(0.0, 0.2, ws[1].shape).astype(np.float32)])


def write_keras2_layout(model, path, full: bool, fixed_strings: bool = False, offset: int = 0) -> None:
    """Write ``model``'s weights as Keras 2 does (``save_weights_to_hdf5_group``): ``layer_names`` in
    ``model.layers`` order, one group per layer with ``weight_names`` ``<layer>/<weight>:0`` and the
    datasets at ``<layer>/<layer>/<weight>:0``; a full save puts them under ``model_weights`` next to
    ``model_config``. ``offset`` renames ``conv2d_N``/``batch_normalization_N`` to ``N + offset``, as
    in a file saved after another model was built in the same session."""
    import h5py

    def rename(n: str) -> str:
        m = re.match(r"^(conv2d|batch_normalization)(?:_(\d+))?$", n)
        return f"{m.group(1)}_{int(m.group(2) or 0) + offset}" if m and offset else n

    def strs(items):
        if fixed_strings:  # older h5py/Keras: fixed-length byte strings
            return np.array([s.encode("utf-8") for s in items]) if items else np.array([], dtype="S1")
        return np.array(items, dtype=h5py.string_dtype()) if items else np.array([], dtype=np.float64)

    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.13.1"
        if full:
            f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {"name": model.name}})
            root = f.create_group("model_weights")
            root.attrs["backend"] = "tensorflow"
            root.attrs["keras_version"] = "2.13.1"
        else:
            root = f
        names = [rename(layer.name) for layer in model.layers]
        root.attrs["layer_names"] = strs(names)
        for layer, name in zip(model.layers, names):
            g = root.create_group(name)
            wnames = [f"{name}/{_short(w.name)}:0" for w in layer.weights]
            g.attrs["weight_names"] = strs(wnames)
            for wn, val in zip(wnames, layer.get_weights()):
                g.create_dataset(wn, data=val)


def _build(kmod, arch: str, seed: int):
    kmod.utils.set_random_seed(seed)  # reproducible kernels (Keras' own initialisers)
    ctor = kmod.applications.ResNet50 if arch == "resnet50" else kmod.applications.InceptionV3
    model = ctor(weights=None, include_top=False, input_shape=(None, None, 3))
    _randomise(model, seed, kmod.layers)
    return model


def _reference(kmod, model, arch: str, seed: int, sizes) -> dict[str, np.ndarray]:
    """Inputs (image 0: a uint8 gray image through Keras' preprocess_input + 1/255; image 1: noise)
    and Keras' feature maps, per size."""
    from keras.applications import imagenet_utils  # Keras' own preprocessing (caffe mode)

    out, rng = {}, np.random.default_rng(seed)
    for size in sizes:
        gray = _gray_image(size, seed)
        rgb = np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
        kin = imagenet_utils.preprocess_input(rgb.copy()) / 255.0
        x = np.stack([kin, rng.normal(0, 0.5, (size, size, 3))]).astype(np.float32)
        out[f"gray_{size}"] = gray
        out[f"x_{size}"] = x
        out[f"y_{size}"] = np.asarray(model(x, training=False))
    return out


def make_keras_side(outdir: Path) -> None:
    """Build, randomise and save the Keras models; write the references (run in a subprocess)."""
    import keras

    manifest = {"keras_version": keras.__version__, "tf_keras": None, "files": {}, "topological": {}}
    keras3 = int(keras.__version__.split(".")[0]) >= 3
    for seed, arch in enumerate(SIZES):
        model = _build(keras, arch, seed)
        np.savez(outdir / f"{arch}_ref.npz", **_reference(keras, model, arch, seed, SIZES[arch]))
        manifest["topological"][arch] = [layer.name for layer in model.layers if layer.weights]
        files = {}
        write_keras2_layout(model, outdir / f"{arch}_full.h5", full=True)
        files["keras2-full"] = f"{arch}_full.h5"
        write_keras2_layout(model, outdir / f"{arch}_weights.h5", full=False, fixed_strings=True, offset=7)
        files["keras2-weights"] = f"{arch}_weights.h5"
        if keras3:
            model.save(str(outdir / f"{arch}_k3.h5"))
            files["keras3-h5"] = f"{arch}_k3.h5"
            model.save_weights(str(outdir / f"{arch}_k3.weights.h5"))
            files["keras3-weights"] = f"{arch}_k3.weights.h5"
        manifest["files"][arch] = files
    if importlib.util.find_spec("tf_keras") is not None:  # Keras 2 itself, when installed
        import warnings

        import tf_keras

        warnings.filterwarnings("ignore", category=UserWarning)  # "HDF5 is a legacy format"
        manifest["tf_keras"] = tf_keras.__version__
        for seed, arch in enumerate(SIZES):
            model = _build(tf_keras, arch, seed + 10)
            np.savez(outdir / f"{arch}_tk_ref.npz", **_reference(tf_keras, model, arch, seed + 10, SIZES[arch][:1]))
            model.save(str(outdir / f"{arch}_tk_full.h5"))
            model.save_weights(str(outdir / f"{arch}_tk_weights.h5"))
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=1))


# =========================================================================== lgenet side (pytest)
@pytest.fixture(scope="module")
def keras_side(tmp_path_factory):
    out = tmp_path_factory.mktemp("keras_side")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, __file__, str(out)], env=env, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        pytest.fail(f"the Keras side failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return out, json.loads((out / "manifest.json").read_text())


def _compare(ref_nhwc: np.ndarray, ours_nchw, label: str) -> float:
    ours = ours_nchw.detach().numpy().transpose(0, 2, 3, 1)
    assert ours.shape == ref_nhwc.shape, label
    diff = float(np.abs(ours - ref_nhwc).max())
    scale = float(np.abs(ref_nhwc).max())
    rel = diff / scale
    print(f"PARITY {label}: max_abs={diff:.3e} feature_scale={scale:.3e} relative={rel:.3e}")
    assert rel <= TOL, f"{label}: max abs diff {diff:.3e} is {rel:.2e} of the feature scale {scale:.3e}"
    return rel


def _nchw(x: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("arch", list(SIZES))
def test_feature_maps_match_keras(keras_side, arch, layout):
    import torch

    from lgenet.models import create_backbone

    out, manifest = keras_side
    if layout not in manifest["files"][arch]:
        pytest.skip(f"{layout} needs keras>=3 (have {manifest['keras_version']})")
    ref = np.load(out / f"{arch}_ref.npz")
    bb = create_backbone(arch, init="radimagenet", weights_file=out / manifest["files"][arch][layout]).eval()
    assert bb.lgenet_layout == "keras" and bb.input_norm.name == "keras_caffe"
    assert bb.weights_info.n_loaded == N_TENSORS[arch] and bb.weights_info.format == "keras-h5"
    # keras2-full: both images (preprocessed uint8 gray, noise) at both sizes; the other layouts
    # (same weights, other files): the noise image at the main size, and the same tensors exactly.
    cases = [(s, slice(None)) for s in SIZES[arch]] if layout == "keras2-full" else [(SIZES[arch][0], slice(1, 2))]
    for size, batch in cases:
        with torch.no_grad():
            feats = bb.forward_features(_nchw(ref[f"x_{size}"][batch]))
        _compare(ref[f"y_{size}"][batch], feats, f"{arch} {layout} {size}px")
    if layout != "keras2-full":
        full = create_backbone(
            arch, init="radimagenet", weights_file=out / manifest["files"][arch]["keras2-full"]
        ).state_dict()
        assert all(torch.equal(v, full[k]) for k, v in bb.state_dict().items())


@pytest.mark.parametrize("arch", list(SIZES))
def test_full_preprocessing_path_on_uint8_grayscale(keras_side, arch):
    """uint8 grayscale -> lgenet (x/255 -> InputAdapter keras_caffe -> backbone) equals
    Keras (gray replicated to RGB -> imagenet_utils.preprocess_input -> 1/255 -> model)."""
    import torch

    from lgenet.models import build_model

    out, manifest = keras_side
    ref = np.load(out / f"{arch}_ref.npz")
    size = SIZES[arch][0]
    x01 = torch.from_numpy(ref[f"gray_{size}"].astype(np.float32) / 255.0)[None, None]
    model = build_model(
        arch, "radimagenet", out / manifest["files"][arch]["keras2-full"], image_size=size, head="gap"
    ).eval()
    assert model.spec.norm == "keras_caffe" and model.spec.layout == "keras"
    adapted = model.adapter(x01).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(adapted, ref[f"x_{size}"][:1], atol=1e-6)  # BGR means, then 1/255, as Keras
    with torch.no_grad():
        feats = model.forward_features(x01)
    _compare(ref[f"y_{size}"][:1], feats, f"{arch} uint8-gray full path {size}px")


def test_resnet50_topological_order_matches_keras(keras_side):
    from lgenet.models.keras_resnet import keras_resnet50_topological_order

    assert keras_side[1]["topological"]["resnet50"] == keras_resnet50_topological_order()


@pytest.mark.parametrize("arch", list(SIZES))
def test_genuine_keras2_files(keras_side, arch):
    """Files written by Keras 2 itself (tf_keras), when installed: model.save and save_weights."""
    import torch

    from lgenet.models import create_backbone

    out, manifest = keras_side
    if not manifest["tf_keras"]:
        pytest.skip("optional: tf_keras (Keras 2) is not installed; it would write genuine Keras 2 files")
    ref = np.load(out / f"{arch}_tk_ref.npz")
    size = SIZES[arch][0]
    for kind in ("full", "weights"):
        bb = create_backbone(arch, init="radimagenet", weights_file=out / f"{arch}_tk_{kind}.h5").eval()
        assert f"keras2-{kind}" in bb.weights_info.fixups[0]
        with torch.no_grad():
            feats = bb.forward_features(_nchw(ref[f"x_{size}"][:1]))
        _compare(ref[f"y_{size}"][:1], feats, f"{arch} tf_keras-{kind} {size}px")


if __name__ == "__main__":  # the Keras side: python tests/test_keras_parity.py OUTDIR
    make_keras_side(Path(sys.argv[1]))
