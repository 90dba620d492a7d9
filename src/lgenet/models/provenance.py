"""What a backbone's weights were loaded from (recorded in every fit and printed by ``lgenet weights inspect``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["WeightsInfo"]


@dataclass
class WeightsInfo:
    """What was loaded: recorded in the run's config and printed by ``lgenet weights inspect``."""

    init: str
    source: str  # 'random', 'timm-hub', 'file'
    format: str = ""  # 'torch', 'safetensors', 'radimagenet-pt', 'keras-h5'
    file_sha256: str | None = None
    norm: str = "imagenet"
    n_loaded: int = 0
    fixups: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "init": self.init,
            "source": self.source,
            "format": self.format,
            "file_sha256": self.file_sha256,
            "norm": self.norm,
            "n_loaded": self.n_loaded,
            "fixups": list(self.fixups),
            "dropped": list(self.dropped),
        }
