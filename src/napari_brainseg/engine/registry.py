"""The model registry: the one place a model is described.

Training builds the network from ``ModelSpec.network``, inference loads ``weights_path`` after
checking it against the sha256 in the model card, and the widget lists ``MODELS`` - so nothing
about a model is written twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..conventions import Convention
from ..errors import BrainsegInputError
from ..io.brats import MODALITIES
from ..io.cases import CaseKind
from ..io.lgg import CHANNELS

if TYPE_CHECKING:  # imported where used, so listing MODELS (the widget does) stays light
    import torch

WEIGHTS_DIR = Path(__file__).parent / "weights"
BRATS_MODEL = "brats-unet3d"
LGG_MODEL = "lgg-unet2d"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    spatial_dims: int
    in_channels: tuple[str, ...]  # what each input channel must be, in order
    out_channels: tuple[str, ...]  # what each sigmoid output channel predicts
    label_convention: str  # default convention of the labels it produces (conventions.CONVENTIONS)
    case_kind: CaseKind  # the kind of case it segments (io.cases.Case.kind)
    network: dict = field(default_factory=dict)  # monai.networks.nets.UNet keyword arguments
    patch_size: tuple[int, ...] = ()  # training patch and sliding-window ROI
    # the grid the model was trained on; inputs on other grids are brought to it and back (model_grid)
    orientation: str | None = None  # nibabel axcodes of the NIfTI (i, j, k) axes, e.g. "LPS"
    spacing_mm: tuple[float, ...] | None = None  # voxel size, napari (z, y, x) order
    plane_size: tuple[int, int] | None = None  # 2D models: the (H, W) of a training slice
    # sigmoid threshold: one for every output channel, or one per channel in ``out_channels`` order
    threshold: float | tuple[float, ...] = 0.5
    # connected components smaller than this fraction of the largest are dropped (None: keep all)
    min_component_fraction: float | None = None
    # an enhancing-tumour prediction of fewer voxels than this is relabelled as tumour core, the rule
    # BraTS winners use against false ET in tumours with little or none (None: keep all)
    enhancing_min_voxels: int | None = None
    # holes in the tumour core (ET inside TC) filled, "volume" or "planes" (preprocess.HoleFill): the
    # necrosis an enhancing rim encloses, which the network can miss (None: as predicted)
    core_hole_fill: str | None = None
    # inference: windows (3D) or slices (2D) per forward pass; sliding-window overlap (3D, Gaussian blending)
    batch_size: int = 1
    sw_overlap: float | None = None
    # networks in the weights file: a fold ensemble (engine.ensemble, mean of probabilities) when > 1,
    # stored as one state dict with member-index key prefixes ("0.", "1.", ...); the fast setting runs member 0
    members: int = 1
    # flip TTA in the default (accurate) setting, where out-of-fold cross-validation says it helps;
    # the fast setting never uses it
    tta: bool = False
    # 2D models: how many neighbouring slices either side each ensemble member sees as extra input
    # channels (2.5D, ``preprocess.stack_neighbours``); empty: every member sees its slice alone
    member_contexts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.threshold, tuple) and len(self.threshold) != len(self.out_channels):
            raise ValueError(f"{self.name}: {len(self.threshold)} thresholds for output channels {self.out_channels}")

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The sigmoid threshold of each output channel, in ``out_channels`` order."""
        if isinstance(self.threshold, tuple):
            return tuple(float(t) for t in self.threshold)
        return (float(self.threshold),) * len(self.out_channels)

    def threshold_of(self, channel: str) -> float:
        return self.thresholds[self.out_channels.index(channel)]

    @property
    def context(self) -> int:
        """Neighbouring slices either side in the input the model is given (its widest member's)."""
        return max(self.member_contexts, default=0)

    def member_context(self, index: int) -> int:
        return self.member_contexts[index] if self.member_contexts else 0

    def channel_window(self, index: int) -> tuple[int, int] | None:
        """The input channels member ``index`` reads, (start, stop), when it sees fewer neighbouring
        slices than the input carries; None when it reads them all."""
        extra, per_slice = self.context - self.member_context(index), len(self.in_channels)
        return (extra * per_slice, (2 * self.context + 1 - extra) * per_slice) if extra else None

    @property
    def weights_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.pt"

    @property
    def card_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.json"

    def card(self) -> dict:
        if not self.card_path.is_file():
            raise BrainsegInputError(f"model {self.name}: no model card at {self.card_path}; reinstall the package")
        try:
            card = json.loads(self.card_path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise BrainsegInputError(
                f"model {self.name}: the model card {self.card_path.name} is unreadable ({type(exc).__name__}); "
                "reinstall the package"
            ) from None
        if not isinstance(card, dict):
            raise BrainsegInputError(f"model {self.name}: the model card {self.card_path.name} is not a JSON object")
        return card


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name=LGG_MODEL,
            title="2D U-Nets, 10-network ensemble (2.5D and 2D recipes, 5 folds each), LGG FLAIR abnormality (kaggle_3m slices)",
            spatial_dims=2,
            in_channels=CHANNELS,
            out_channels=("tumour",),
            label_convention=Convention.LGG,
            case_kind=CaseKind.LGG,
            network=dict(channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2, norm="batch"),
            patch_size=(256, 256),
            plane_size=(256, 256),  # kaggle_3m slices; other sizes are resized to it and back
            # training/configs/lgg-unet2d-mix.json: the five folds of lgg-unet25d-p128-cv (members 0-4, the slice
            # and one neighbour either side) then those of lgg-unet2d-cv (members 5-9, the slice alone).
            # Chosen on the mean of the two recipes' out-of-fold predictions (training/cv/lgg-unet2d-mix/
            # summary.json, --tta off): threshold 0.5, cleanup 0.3 best on every fold's complement, nested Dice
            # 0.836 (each recipe alone 0.828 / 0.825); flip TTA adds nothing nested (0.835) for 3x the time.
            threshold=0.5,
            min_component_fraction=0.3,
            members=10,
            member_contexts=(1, 1, 1, 1, 1, 0, 0, 0, 0, 0),
            batch_size=16,
        ),
        ModelSpec(
            name=BRATS_MODEL,
            title="3D U-Net, 5-fold ensemble, BraTS glioma sub-regions (TC, WT, ET)",
            spatial_dims=3,
            in_channels=MODALITIES,
            out_channels=("TC", "WT", "ET"),
            label_convention=Convention.BRATS2018,
            case_kind=CaseKind.BRATS,
            network=dict(channels=(16, 32, 64, 128, 160), strides=(2, 2, 2, 2), num_res_units=1, norm="instance"),
            patch_size=(128, 128, 128),  # training/configs/brats-unet3d-cv-long.json
            # BraTS 2018-2021 files are stored LPS at 1 mm (BraTS-Africa RAS); trained on LPS arrays
            orientation="LPS",
            spacing_mm=(1.0, 1.0, 1.0),
            # chosen on out-of-fold predictions of the five folds without TTA (training/cv/brats-unet3d-cv-long/
            # summary.json): a threshold per region, TC 0.8 / WT 0.2 / ET 0.5, cleanup 0.1 and the core's holes
            # filled plane by plane, best on all 72 cases; every fold's complement chose TC 0.7-0.8, WT 0.2-0.3
            # and the fill. Nested TC/WT/ET 0.740/0.848/0.717 (brats-unet3d-cv, the folds before their 30 more epochs:
            # 0.695/0.827/0.710 with one shared threshold). Flip TTA adds nothing out of fold (0.739/0.849/0.718)
            # for 3.5x the time, so it is off.
            threshold=(0.8, 0.2, 0.5),
            min_component_fraction=0.1,
            core_hole_fill="planes",
            members=5,  # training/configs/brats-unet3d-cv-long.json folds 0-4 (python -m training.ensemble)
            batch_size=2,
            # as in training validation; benchmarks/overlap.py (round-1 model, 6 validation cases): overlap
            # 0.5 adds 0.001-0.002 Dice for 45 % more inference time, so 0.25 stays.
            sw_overlap=0.25,
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise BrainsegInputError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def model_for(case_kind: CaseKind | str) -> str:
    """The model that segments cases of ``case_kind`` (io.cases.Case.kind)."""
    return next(spec.name for spec in MODELS.values() if spec.case_kind == case_kind)


def build_network(spec: ModelSpec, member: int = 0) -> torch.nn.Module:
    """Network ``member`` of ``spec`` (untrained): one channel per input channel of each slice it sees."""
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=spec.spatial_dims,
        in_channels=len(spec.in_channels) * (2 * spec.member_context(member) + 1),
        out_channels=len(spec.out_channels),
        **spec.network,
    )


def _first_members(state: dict, members: int) -> dict:
    """The keys of an ensemble state dict ("<index>.<key>") that belong to its first ``members``
    networks; a single member loses its prefix (a plain network). Keys without an index prefix are
    dropped, so a file that is not an ensemble fails to load with a clear message."""
    kept = {}
    for key, value in state.items():
        index, _, rest = key.partition(".")
        if index.isdigit() and int(index) < members:
            kept[rest if members == 1 else key] = value
    return kept


def build_ensemble(spec: ModelSpec, members: int | None = None) -> torch.nn.Module:
    """``members`` networks of ``spec`` as one ensemble; a single network stays a plain network."""
    count = spec.members if members is None else members
    if count == 1:
        return build_network(spec)
    from .ensemble import MeanProbabilityEnsemble

    return MeanProbabilityEnsemble([build_network(spec, i) for i in range(count)],
                                   [spec.channel_window(i) for i in range(count)])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=4)
def _verified_state_dict(name: str, path_str: str, mtime: float) -> dict:
    spec = get_spec(name)
    path = Path(path_str)
    expected = spec.card().get("sha256")
    actual = sha256_of(path)
    if expected != actual:
        raise BrainsegInputError(
            f"model {name}: weights file {path.name} does not match its model card (sha256 {actual[:12]}... "
            f"expected {str(expected)[:12]}...); reinstall the package"
        )
    import torch

    try:
        # weights_only: a checkpoint that carries pickled code is refused, never executed
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BrainsegInputError(f"model {name}: cannot load {path.name} ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BrainsegInputError(f"model {name}: {path.name} is not a state dict of tensors; reinstall the package")
    return {k: v.float() for k, v in state.items()}


def load_model(name: str, device: str | torch.device = "cpu", members: int | None = None) -> torch.nn.Module:
    """The network with its bundled weights, verified against the model card, in eval mode.

    For a fold ensemble (``ModelSpec.members`` > 1) the first ``members`` of them (default: all) as
    one :class:`~.ensemble.MeanProbabilityEnsemble`; ``members=1`` gives member 0 as a plain network.
    Built once per (model, device, weights file, members): later calls return the same network
    (building it costs 130-150 ms a call), so callers must not change it in place.
    """
    spec = get_spec(name)
    path = spec.weights_path
    if not path.is_file():
        raise BrainsegInputError(f"model {name}: weights file {path} is missing; reinstall the package")
    count = spec.members if members is None else int(members)
    if not 1 <= count <= spec.members:
        raise BrainsegInputError(f"model {name}: members must be 1 to {spec.members}, not {members}")
    return _network(name, str(device), str(path), path.stat().st_mtime, count)


def clear_cache() -> None:
    """Forget verified weights and built networks (after the weights files changed)."""
    _verified_state_dict.cache_clear()
    _network.cache_clear()


@lru_cache(maxsize=4)
def _network(name: str, device: str, path_str: str, mtime: float, members: int) -> torch.nn.Module:
    spec, path = get_spec(name), Path(path_str)
    state = _verified_state_dict(name, path_str, mtime)
    if spec.members > 1:
        state = _first_members(state, members)
    net = build_ensemble(spec, members)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:  # keys or tensor shapes of another network
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise BrainsegInputError(
            f"model {name}: {path.name} does not fit the {spec.title} network ({detail.rstrip(':')}); reinstall the package"
        ) from None
    if members == 1 and spec.channel_window(0):  # member 0 alone, given the widest member's input
        from .ensemble import ChannelWindow

        net = ChannelWindow(net, *spec.channel_window(0))
    return net.to(device).eval()
