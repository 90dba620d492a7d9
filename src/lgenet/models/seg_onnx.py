"""The segmentation networks on ONNX Runtime (``segment apply --engine onnx``, since 0.3.0).

A cold ``segment apply`` spends most of its time importing MONAI (2.3 s of 5.8 s on 2 cores), which loads all
of MONAI to build three small U-Nets per fold. With ``--engine onnx`` each fold's networks are exported once to
ONNX (``torch.onnx.export``, the dynamo exporter, a dynamic batch axis) into a cache folder named by the fold
model file's SHA-256, and every later apply runs them on ONNX Runtime without importing MONAI. The result is
the same within a stated tolerance, not bit for bit: ONNX Runtime sums in another order (logits differ by about
1e-5), so a voxel whose class probabilities tie to within that can change class. ``bench/engine_agreement.py``
measures it on EMIDEC; docs/results/performance.md gives the figures.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from lgenet.errors import ConfigError, LgenetError

__all__ = ["ENGINES", "onnx_runtime_available", "OrtNet", "export_net", "resolve_engine", "write_stamp"]

#: the inference engines of ``segment apply`` (``auto``: onnx for a model bundle when ONNX Runtime is installed)
ENGINES = ("auto", "torch", "onnx")


def onnx_runtime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine(engine: str, *, bundle: bool) -> str:
    """``torch`` or ``onnx`` for ``engine``: ``auto`` is onnx for a bundle when ONNX Runtime is installed."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        return "onnx" if bundle and onnx_runtime_available() else "torch"
    if engine == "onnx" and not onnx_runtime_available():
        raise ConfigError("--engine onnx needs ONNX Runtime: pip install onnxruntime (or use --engine torch)")
    return engine


class OrtNet:
    """One exported network on ONNX Runtime, called as the torch module was: (N, C, H, W) float tensor in,
    logits tensor out."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or torch.get_num_threads())
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # no busy-waiting between runs: torch's own work between the network calls (sampling, flips, softmax)
        # shares the same cores
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input: arr})[0])

    def eval(self) -> OrtNet:
        return self

    def to(self, *args, **kwargs) -> OrtNet:
        return self


def export_net(net: torch.nn.Module, in_channels: int, size: int, path: Path) -> None:
    """Export ``net`` (a (N, in_channels, size, size) -> logits network) to ONNX at ``path``, atomically, with a
    dynamic batch axis; refused when ONNX Runtime's outputs differ from torch's by more than 1e-3."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    x = torch.rand(3, in_channels, size, size, generator=torch.Generator().manual_seed(0))
    net = net.eval()
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript", "torch._dynamo")]
    levels = [lg.level for lg in quiet]
    try:
        for lg in quiet:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), open(os.devnull, "w") as devnull:
            warnings.simplefilter("ignore")
            import contextlib

            with contextlib.redirect_stdout(devnull):
                torch.onnx.export(
                    net,
                    (x,),
                    str(tmp),
                    input_names=["x"],
                    output_names=["logits"],
                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},),
                    dynamo=True,
                    external_data=False,
                )
        with torch.no_grad():
            ref = net(x).numpy()
        got = OrtNet(tmp, threads=1)(x).numpy()
        diff = float(np.abs(ref - got).max())
        if not np.isfinite(diff) or diff > 1e-3:
            raise LgenetError(
                f"the ONNX export of {path.stem} differs from the torch network by {diff:.2g} (> 1e-3): use "
                "--engine torch"
            )
        os.replace(tmp, path)
    except LgenetError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exporter failure: say it and the way around it
        raise LgenetError(
            f"exporting {path.stem} to ONNX failed ({type(exc).__name__}: {str(exc)[:200]}); use --engine torch"
        ) from None
    finally:
        for lg, lv in zip(quiet, levels):
            lg.setLevel(lv)
        tmp.unlink(missing_ok=True)


def write_stamp(folder: Path, info: dict) -> None:
    """What exported the folder's networks (lgenet and torch versions), beside them."""
    from lgenet.utils import atomic_write_text

    atomic_write_text(folder / "exported.json", json.dumps(info, indent=1) + "\n")
