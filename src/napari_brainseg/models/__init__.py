from .registry import MODELS, ModelSpec, build_network, get_spec, load_model

__all__ = ["MODELS", "ModelSpec", "build_network", "get_spec", "load_model"]
