"""What the registry must say to ship a model's cross-validation folds as one ensemble, and a way to
try such an ensemble before it ships.

``ensemble_spec`` is the registry's spec as the folds were trained and scored (network, patch size,
sliding-window overlap of their out-of-fold predictions, 2.5D context of each recipe's members) with the post-processing cross-validation
chose: shipping refuses while the registry differs (``registry_changes`` lists what to set).
``installed`` makes the package use a candidate - its spec and a weights folder outside the
package - inside one process, so a dry run loads it through ``registry.load_model`` and segments
with ``segment`` exactly as users would, and the package's own weights are never touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

from napari_brainseg.engine import registry
from napari_brainseg.engine.preprocess import stacked_channel_names

# post-processing settings cross-validation chooses (training.cv_scores.GRID) that live in the registry
CHOSEN = ("tta", "threshold", "min_component_fraction", "enhancing_min_voxels", "core_hole_fill")
# what the folds' records fix: the network, the window their out-of-fold probabilities were made
# with, and (2D) the neighbouring slices each member sees
TRAINED = ("network", "patch_size", "sw_overlap", "member_contexts")


def ensemble_spec(spec: registry.ModelSpec, recipes: list[tuple[dict, dict[int, dict]]], to_ship: dict,
                  folds: int) -> registry.ModelSpec:
    """``spec`` as the recipes' folds need it, with the choices in ``to_ship``: ``recipes`` are
    (training config, fold records) pairs, each giving ``folds`` members, recipe by recipe."""
    records = [r for _, recs in recipes for r in recs.values()]
    networks = {json.dumps({k: v for k, v in r["network"].items() if k != "in_channels"}, sort_keys=True)
                for r in records}
    if len(networks) != 1:
        raise SystemExit("error: the folds were trained with different networks; they cannot form one ensemble")
    network = json.loads(networks.pop())
    overlaps = {r["training"]["config"].get("sw_overlap") for r in records}
    if len(overlaps) != 1:
        raise SystemExit(f"error: the folds' out-of-fold windows overlapped differently ({overlaps})")
    contexts = [int(cfg.get("context", 0)) for cfg, _ in recipes]
    for context, (_, recs) in zip(contexts, recipes):
        expected = stacked_channel_names(spec.in_channels, context)
        for r in recs.values():
            if tuple(r["network"]["in_channels"]) != expected or tuple(network["out_channels"]) != spec.out_channels:
                raise SystemExit(f"error: the folds' channels {r['network']['in_channels']} -> {network['out_channels']} "
                                 f"are not the registry's {spec.name} with {context} neighbouring slices either side")
    trained = {
        "network": {k: tuple(v) if isinstance(v, list) else v for k, v in network.items()
                    if k not in ("out_channels", "patch_size")},
        "patch_size": tuple(network["patch_size"]),
        "sw_overlap": overlaps.pop() if spec.spatial_dims == 3 else spec.sw_overlap,
        "member_contexts": tuple(c for c in contexts for _ in range(folds)) if any(contexts) else (),
    }
    return dataclasses.replace(spec, members=folds * len(recipes), **trained,
                               # per-channel thresholds come back from JSON as lists; the registry writes tuples
                               **{k: tuple(v) if isinstance(v, list) else v for k, v in to_ship.items() if k in CHOSEN})


def registry_changes(spec: registry.ModelSpec, wanted: registry.ModelSpec) -> dict:
    """{field: (registry's value, needed value)} for every field the ensemble needs set differently."""
    return {k: (getattr(spec, k), getattr(wanted, k)) for k in ("members", *TRAINED, *CHOSEN)
            if getattr(spec, k) != getattr(wanted, k)}


def save_spec(spec: registry.ModelSpec, folder: Path) -> Path:
    """The candidate's spec as JSON next to its weights, so another process can install it."""
    path = Path(folder) / f"{spec.name}.spec.json"
    path.write_text(json.dumps(dataclasses.asdict(spec), indent=1) + "\n")
    return path


def load_spec(path: Path) -> registry.ModelSpec:
    def tuples(value):
        if isinstance(value, dict):
            return {k: tuples(v) for k, v in value.items()}
        return tuple(value) if isinstance(value, list) else value

    return registry.ModelSpec(**tuples(json.loads(Path(path).read_text())))


@contextlib.contextmanager
def installed(spec: registry.ModelSpec, weights_dir: Path):
    """Inside the block, the package describes ``spec.name`` by ``spec`` and loads its weights and card
    from ``weights_dir``; afterwards it is as before (built networks are forgotten both ways)."""
    before_dir, before_spec = registry.WEIGHTS_DIR, registry.MODELS[spec.name]
    registry.WEIGHTS_DIR, registry.MODELS[spec.name] = Path(weights_dir), spec
    registry.clear_cache()
    try:
        yield spec
    finally:
        registry.WEIGHTS_DIR, registry.MODELS[spec.name] = before_dir, before_spec
        registry.clear_cache()
