"""File names of a model folder written by ``save_pruned`` (torch-free: the load-time checks read them)."""

HEADS_FILE = "heads.safetensors"  # a TicketBertModel's task heads
META_FILE = "ticketbert.json"  # a TicketBertModel's tasks and model config; its encoder is in encoder/
STATE_FILE = "model.safetensors"  # a plain module's weights
STRUCTURE_KEY = "ticketbert_structure"  # config.json: per-layer heads and FFN widths of a pruned encoder
