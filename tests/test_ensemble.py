"""Fold ensembles: several networks in one weights file, run as the mean of their probabilities.

Uses two real cross-validation fold models of the LGG recipe (``training/cv/lgg-unet2d-cv``) as a
two-member ensemble in a private weights folder; the bundled weights are only read.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_brainseg.engine import registry
from napari_brainseg.engine.ensemble import MeanProbabilityEnsemble
from napari_brainseg.engine.segment import segment
from napari_brainseg.errors import BrainsegInputError
from napari_brainseg.phantoms import make_lgg_phantom

MODEL = "lgg-unet2d"
FOLDS = Path(__file__).parent.parent / "training" / "cv" / "lgg-unet2d-cv"


def _fold_state(fold: int) -> dict:
    return torch.load(FOLDS / f"fold{fold}.pt", map_location="cpu", weights_only=True)


def _install(folder, monkeypatch, state: dict, members: int, contexts: tuple[int, ...] = ()):
    """``state`` as the model's weights in ``folder``, with a card that matches and ``members`` (seeing
    ``contexts`` neighbouring slices either side) in its spec."""
    torch.save(state, folder / f"{MODEL}.pt")
    (folder / f"{MODEL}.json").write_text(json.dumps({"sha256": registry.sha256_of(folder / f"{MODEL}.pt")}))
    monkeypatch.setattr(registry, "WEIGHTS_DIR", folder)
    spec = dataclasses.replace(registry.MODELS[MODEL], members=members, member_contexts=contexts)
    monkeypatch.setitem(registry.MODELS, MODEL, spec)
    registry.clear_cache()


@pytest.fixture
def two_folds(tmp_path, monkeypatch):
    state = {f"{i}.{k}": v for i in (0, 1) for k, v in _fold_state(i).items()}
    _install(tmp_path, monkeypatch, state, members=2)
    yield tmp_path
    registry.clear_cache()


def _slices() -> torch.Tensor:
    from napari_brainseg.engine.preprocess import preprocess_lgg

    return torch.from_numpy(preprocess_lgg(make_lgg_phantom().model_input())[8:12])


def test_ensemble_is_the_mean_of_member_probabilities(two_folds):
    net = registry.load_model(MODEL)
    assert isinstance(net, MeanProbabilityEnsemble) and len(net) == 2
    x = _slices()
    with torch.no_grad():
        members = net.member_probabilities(x)
        mean = torch.sigmoid(net(x))
    assert torch.allclose(mean, members.mean(0), atol=1e-5)
    # the members really differ, so the mean is not one of them
    assert (members[0] - members[1]).abs().max() > 0.05


def test_fast_setting_is_member_zero_alone(two_folds):
    fast = registry.load_model(MODEL, members=1)
    assert not isinstance(fast, MeanProbabilityEnsemble)
    expected = _fold_state(0)
    got = fast.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k].half(), expected[k]) for k in expected)


def test_members_out_of_range_are_refused(two_folds):
    with pytest.raises(BrainsegInputError, match="members must be 1 to 2"):
        registry.load_model(MODEL, members=3)


def test_a_single_network_file_is_not_an_ensemble(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, _fold_state(0), members=2)
    with pytest.raises(BrainsegInputError, match="does not fit"):
        registry.load_model(MODEL)
    registry.clear_cache()


def test_segment_says_how_many_networks_ran(two_folds, tmp_path, monkeypatch):
    phantom = make_lgg_phantom()
    both = segment(phantom)
    fast = segment(phantom, fast=True)
    assert both.settings["networks"] == 2 and fast.settings["networks"] == 1
    # fast is exactly member 0 run as a single model
    single = tmp_path / "single"
    single.mkdir()
    _install(single, monkeypatch, _fold_state(0), members=1)
    alone = segment(phantom, tta=False)
    assert np.array_equal(fast.labels, alone.labels)
    assert not np.array_equal(both.labels, fast.labels)



def test_uncertainty_members_are_every_network_under_every_flip(two_folds):
    """With an ensemble, the uncertainty's members are each network under each flip (2 x 3 for LGG),
    not the flips of the networks' mean: their mean is the ensemble's TTA probability and their
    confidence is the pairwise Dice over all six (fast: member 0's three flips)."""
    phantom = make_lgg_phantom()
    tta = segment(phantom, tta=True, return_probabilities=True)
    both = segment(phantom, uncertainty=True, return_probabilities=True)
    fast = segment(phantom, uncertainty=True, fast=True)
    np.testing.assert_allclose(both.probabilities, tta.probabilities, atol=1e-4)
    assert both.settings["networks"] == 2 and 0 < both.confidence <= 1 and both.uncertainty.shape == both.labels.shape

    from napari_brainseg.engine.preprocess import preprocess_lgg
    from napari_brainseg.engine.uncertainty import flip_member_stats
    from napari_brainseg.engine.window import predict_slices

    net = registry.load_model(MODEL)
    x = preprocess_lgg(phantom.model_input())
    nets = [lambda v, m=m: predict_slices(m, v, torch.device("cpu"), batch_size=16, amp=True) for m in net]
    expected = flip_member_stats(nets, x, (2, 3), (2, 3), registry.get_spec(MODEL).threshold, channel_axis=1)
    assert expected.n == 6 and both.confidence == pytest.approx(expected.confidence(), abs=1e-3)
    member0 = flip_member_stats(nets[:1], x, (2, 3), (2, 3), registry.get_spec(MODEL).threshold, channel_axis=1)
    assert fast.confidence == pytest.approx(member0.confidence(), abs=1e-3)
    assert abs(fast.confidence - both.confidence) > 0.01  # member 1 counts


def _p128_state(fold: int) -> dict:
    """A fold of the 2.5D recipe (the slice and one neighbour either side: 9 input channels)."""
    return torch.load(FOLDS.parent / "lgg-unet25d-p128-cv" / f"fold{fold}.pt", map_location="cpu", weights_only=True)


@pytest.mark.parametrize("contexts", [(1, 0), (0, 1)], ids=["2.5D-member-first", "2D-member-first"])
def test_members_of_two_recipes_each_read_their_own_slices(tmp_path, monkeypatch, contexts):
    """A 2.5D member and a 2D member in one ensemble: the input carries the neighbouring slices, the
    2D member reads only the centre slice's channels, and the ensemble is the mean of what each
    network gives on its own input; the fast setting is member 0 alone on its own input."""
    from napari_brainseg.engine.preprocess import preprocess_lgg, stack_neighbours
    from napari_brainseg.engine.window import predict_slices

    states = {1: _p128_state(0), 0: _fold_state(1)}  # by context
    state = {f"{i}.{k}": v for i, c in enumerate(contexts) for k, v in states[c].items()}
    _install(tmp_path, monkeypatch, state, members=2, contexts=contexts)
    phantom = make_lgg_phantom()
    slices = preprocess_lgg(phantom.model_input())
    cpu = torch.device("cpu")

    def alone(context: int) -> np.ndarray:  # one recipe's network as training scored it
        net = registry.build_network(dataclasses.replace(registry.get_spec(MODEL), member_contexts=(context,)))
        net.load_state_dict({k: v.float() for k, v in states[context].items()})
        return predict_slices(net.eval(), stack_neighbours(slices, context), cpu, batch_size=16, amp=False)

    expected = (alone(0) + alone(1)) / 2
    assert np.abs(alone(0) - alone(1)).max() > 0.05  # two different networks
    both = segment(phantom, tta=False, return_probabilities=True, device="cpu")
    # bf16 autocast (on CPUs that have it) against the fp32 references: well under a threshold step
    assert np.abs(both.probabilities[0] - expected[:, 0]).max() < 0.05
    assert np.mean((both.probabilities[0] > 0.4) == (expected[:, 0] > 0.4)) > 0.999
    fast = segment(phantom, fast=True, return_probabilities=True, device="cpu")
    assert np.abs(fast.probabilities[0] - alone(contexts[0])[:, 0]).max() < 0.05


def test_shipped_lgg_model_runs_its_cross_validated_setting():
    """The shipped LGG model: all fold networks with flip TTA by default (registry), one network
    without TTA when fast."""
    spec = registry.get_spec(MODEL)
    result = segment(make_lgg_phantom())
    assert result.settings["networks"] == spec.members and result.settings["tta"] == spec.tta
    assert result.method == f"{spec.members}-network ensemble" + (" + flip TTA" if spec.tta else "")
    fast = segment(make_lgg_phantom(), fast=True)
    assert fast.settings["networks"] == 1 and fast.settings["tta"] is False


def test_cli_fast_says_one_network(lgg_patient, tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "napari_brainseg.cli", "predict", str(lgg_patient), "--output",
                          str(tmp_path), "--fast", "--no-overlay"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    line = next(li for li in out.stderr.splitlines() if li.startswith(lgg_patient.name + ":"))
    assert "1 network (fast)" in line
