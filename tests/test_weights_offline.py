"""Offline, ImageNet weights from the hub fail at once with the file to fetch, not after a minute of retries."""

from __future__ import annotations

import pytest


def test_an_unreachable_hub_puts_the_hub_client_offline_and_says_what_to_fetch(monkeypatch):
    pytest.importorskip("huggingface_hub")
    import timm
    from huggingface_hub import constants

    import lgenet.models.weights as w
    from lgenet.errors import WeightsError
    from lgenet.models.registry import get_spec

    seen = {}

    def fake_create_model(*a, **k):
        seen["offline"] = constants.HF_HUB_OFFLINE
        raise OSError("no connection")

    before = constants.HF_HUB_OFFLINE
    monkeypatch.setattr(w, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(timm, "create_model", fake_create_model)
    with pytest.raises(WeightsError, match=r"not reachable from here.*--weights-file.*model\.safetensors"):
        w._from_hub(get_spec("resnet50"))
    assert seen["offline"] is True and constants.HF_HUB_OFFLINE == before  # offline for that call only


def test_a_reachable_hub_is_used_as_it_is(monkeypatch):
    pytest.importorskip("huggingface_hub")
    import timm
    from huggingface_hub import constants

    import lgenet.models.weights as w
    from lgenet.models.registry import get_spec

    seen = {}
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(w, "hub_reachable", lambda *a, **k: True)
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: seen.setdefault("offline", constants.HF_HUB_OFFLINE))
    w._from_hub(get_spec("resnet50"))
    assert seen["offline"] is False
