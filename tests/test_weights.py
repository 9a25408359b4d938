"""Model weights: a missing, truncated, altered or code-carrying checkpoint (or a bad model card) is refused
with one line and never executed. The registry is pointed at a temporary copy; the bundled weights are only
read.

Tests marked ``hardening`` are rows of the troubleshooting table (``tests/hardening_catalogue.py``).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

import napari_brainseg
from napari_brainseg.engine import registry
from napari_brainseg.errors import BrainsegInputError

MODEL = "lgg-unet2d"


class _Payload:
    """Unpickling this calls os.system, which would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """A private copy of the model's weights and card (card sha256 matching the copy)."""
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(registry.WEIGHTS_DIR / f"{MODEL}.pt", folder)
    card = json.loads((registry.WEIGHTS_DIR / f"{MODEL}.json").read_text())
    card["sha256"] = registry.sha256_of(folder / f"{MODEL}.pt")
    (folder / f"{MODEL}.json").write_text(json.dumps(card))
    monkeypatch.setattr(registry, "WEIGHTS_DIR", folder)
    registry.clear_cache()
    yield folder
    registry.clear_cache()


def _set_card_sha(folder):
    card = json.loads((folder / f"{MODEL}.json").read_text())
    card["sha256"] = registry.sha256_of(folder / f"{MODEL}.pt")
    (folder / f"{MODEL}.json").write_text(json.dumps(card))


def _missing(folder, _marker):
    (folder / f"{MODEL}.pt").unlink()
    return "is missing; reinstall"


def _truncated(folder, _marker):
    path = folder / f"{MODEL}.pt"
    path.write_bytes(path.read_bytes()[:100_000])
    return "does not match its model card"


def _altered(folder, _marker):
    path = folder / f"{MODEL}.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit
    path.write_bytes(bytes(raw))
    return "does not match its model card"


def _pickle_with_code(folder, marker):
    (folder / f"{MODEL}.pt").write_bytes(pickle.dumps({"weight": _Payload(marker)}))
    _set_card_sha(folder)  # even with a matching card, the code is never run
    return "cannot load"


def _torch_checkpoint_with_code(folder, marker):
    torch.save({"weight": _Payload(marker)}, folder / f"{MODEL}.pt")
    _set_card_sha(folder)
    return "cannot load"


def _pickle_with_code_unverified(folder, marker):
    torch.save({"weight": _Payload(marker)}, folder / f"{MODEL}.pt")  # card sha256 left as it was
    return "does not match its model card"


def _wrong_architecture(folder, _marker):
    torch.save({"conv.weight": torch.zeros(3, 3)}, folder / f"{MODEL}.pt")
    _set_card_sha(folder)
    return "does not fit the"


def _not_a_state_dict(folder, _marker):
    torch.save(torch.zeros(3), folder / f"{MODEL}.pt")
    _set_card_sha(folder)
    return "not a state dict"


def _card_missing(folder, _marker):
    (folder / f"{MODEL}.json").unlink()
    return "no model card"


def _card_corrupt(folder, _marker):
    (folder / f"{MODEL}.json").write_text('{"sha256": "abc", ')
    return "unreadable"


FAULTS = {
    "weights-missing": _missing,
    "weights-truncated": _truncated,
    "weights-altered-sha256-mismatch": _altered,
    "weights-pickle-with-code": _pickle_with_code,
    "weights-torch-checkpoint-with-code": _torch_checkpoint_with_code,
    "weights-pickle-with-code-unverified": _pickle_with_code_unverified,
    "weights-wrong-architecture": _wrong_architecture,
    "weights-not-a-state-dict": _not_a_state_dict,
    "model-card-missing": _card_missing,
    "model-card-corrupt": _card_corrupt,
}


@pytest.mark.hardening
@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_bad_weights_refused_never_executed(fault, weights, tmp_path):
    marker = tmp_path / "PWNED"
    expected = fault(weights, marker)
    with pytest.raises(BrainsegInputError) as info:
        napari_brainseg.segment(np.zeros((16, 16, 3), np.uint8), MODEL, device="cpu")
    message = str(info.value)
    assert expected in message and MODEL in message and "\n" not in message, message
    assert not marker.exists(), "the checkpoint's code was executed"


def test_good_copy_loads(weights):
    """The fixture itself is sound: the same copy, untouched, loads and segments."""
    result = napari_brainseg.segment(np.zeros((16, 16, 3), np.uint8), MODEL, device="cpu")
    assert result.labels.shape == (16, 16)


def test_the_payload_really_runs_code_when_unpickled(tmp_path):
    """So the 'never executed' assertions above are meaningful: plain pickle does run it."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()
