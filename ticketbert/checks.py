"""Load-time checks of everything a run will need, before any heavy import or expensive work.

``python -m ticketbert.train``, ``python -m ticketbert.posthoc`` and ``python -m tune.sweep``
call these after the config validated and before torch, transformers, Ray or MLflow are
imported and before any data or model is touched. Every failure is a ``ConfigError`` of one
line: the field, the value and what is allowed (the commands exit with code 2).

Devices are asked of the CUDA driver (``libcuda``) through ctypes, so checking
``train.device=cuda`` does not import torch.
"""

from __future__ import annotations

import ctypes
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketbert.config import ConfigError, PruneConfig, RunConfig, TrackingConfig
from ticketbert.defaults import resolve_encoder
from ticketbert.data import resolve_source
from ticketbert.layout import META_FILE, STRUCTURE_KEY
from ticketbert.pruning.methods.description import (CONFIG_OPTIONS, MethodDescription, describe, descriptions, either,
                                                    is_dense)

# options read by one prune.mode only (with a pruning method); set in any other mode they do nothing
MODE_OPTIONS: dict[str, tuple[str, ...]] = {
    "posthoc": ("recovery_epochs", "distill_alpha", "distill_temperature", "dense_dir"),
    "early_bird": ("early_bird_interval", "early_bird_window", "early_bird_epsilon", "early_bird_max_steps",
                   "early_bird_draws", "early_bird_search_lr"),
    "imp": ("imp_rounds",),
}
# options that shape how any pruning method prunes: nothing to do under method none (the options
# only some methods take, prune.repair, budget, ..., are read where the method's description says)
METHOD_OPTIONS = ("sparsity", "criterion", "scope", "calibration_examples")
# options no training run reads (``python -m ticketbert.posthoc`` reads them)
POSTHOC_ONLY = ("levels",)
MLFLOW_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")


@dataclass(frozen=True)
class EncoderInfo:
    """Where an encoder's files are and what its config.json says (no weights read)."""

    name: str
    folder: Path
    config: dict[str, Any]


def _cached_config(repo_id: str) -> Path | None:
    """config.json of hub model ``repo_id``: from the local cache, else (online) one request."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    found = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(found, str):
        return Path(found)
    if constants.HF_HUB_OFFLINE:
        return None
    try:
        return Path(hf_hub_download(repo_id, "config.json", etag_timeout=10))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError):
        return None


def check_encoder(name: str, field: str = "model.encoder") -> EncoderInfo:
    """The encoder ``name`` (bundled MiniLM, a folder with config.json, or a hub id in the local
    cache; online, one metadata request), with its config.json; ConfigError otherwise."""
    location = resolve_encoder(name)
    folder = Path(location).expanduser()
    if folder.is_dir():
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise ConfigError(f"{field}: {name!r} is a folder without config.json; expected a saved model folder")
    elif folder.exists() or location.startswith((".", "/", "~")) or location.count("/") > 1:
        raise ConfigError(f"{field}: {name!r} is not a folder with config.json, nor a hub id (owner/name)")
    else:
        config_file = _cached_config(location)
        if config_file is None:
            offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
            raise ConfigError(f"{field}: {name!r} is neither a local folder with config.json nor a hub model "
                              f"in the local cache{offline}; download it once or give its folder")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{field}: {config_file} is not a readable JSON config: {exc}") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise ConfigError(f"{field}: {config_file} has no model_type; expected a Hugging Face model config")
    return EncoderInfo(name, config_file.parent, config)


def check_saved_model(path: Path, field: str) -> EncoderInfo:
    """A model folder ``load_pruned`` reads (a ticketbert model or a Hugging Face model); its encoder."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{field}: {str(path)!r} is not a folder; give a model saved by training (its model/)")
    if (path / META_FILE).is_file():
        return check_encoder(str(path / "encoder"), field)
    if not (path / "config.json").is_file():
        raise ConfigError(f"{field}: {str(path)!r} holds neither {META_FILE} (a ticketbert model) nor config.json "
                          f"(a Hugging Face model); give a model saved by training (its model/)")
    return check_encoder(str(path), field)


def cuda_device_count() -> int:
    """CUDA devices visible to this process, asked of the driver (no torch import); 0 without one."""
    for library in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            driver = ctypes.CDLL(library)
            break
        except OSError:
            continue
    else:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def check_device(device: str, field: str = "train.device") -> None:
    """``cuda`` / ``cuda:N`` only where the driver sees that device (``auto`` and ``cpu`` always)."""
    if not device.startswith("cuda"):
        return
    count = cuda_device_count()
    index = int(device.partition(":")[2] or 0)
    if count == 0:
        raise ConfigError(f"{field}: {device!r} but no CUDA device is visible (no driver or "
                          f"CUDA_VISIBLE_DEVICES empty); use auto or cpu")
    if index >= count:
        raise ConfigError(f"{field}: {device!r} but {count} CUDA device(s) are visible: use cuda:0..cuda:{count - 1}")


def check_writable(path: Path, field: str) -> None:
    """``path`` is a folder that exists or can be created, and can be written."""
    path = Path(path).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{field}: {str(path)!r}: {existing} is a file, not a folder; give a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{field}: {str(path)!r}: {existing} is not writable; give a folder you can write to")


def tracking_uri(tracking: TrackingConfig) -> str:
    """The MLflow URI a run will use: ``tracking.uri``, $MLFLOW_TRACKING_URI, else the local store."""
    return tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns' / 'mlflow.db'}"


def check_tracking(tracking: TrackingConfig, field: str = "tracking.uri") -> None:
    """The MLflow store is reachable: a local store's folder writable, a server answering /health."""
    if not tracking.enabled:
        return
    uri = tracking_uri(tracking)
    scheme, sep, rest = uri.partition(":")
    scheme = scheme.split("+")[0] if sep else ""
    if sep and len(scheme) > 1 and scheme not in MLFLOW_SCHEMES:
        raise ConfigError(f"{field}: {uri!r}: unknown scheme {scheme!r}; use one of {', '.join(MLFLOW_SCHEMES)}")
    if scheme == "sqlite":
        database = Path(rest.removeprefix("///")) if rest.startswith("///") else None
        if database is None:
            raise ConfigError(f"{field}: {uri!r}: a SQLite store is sqlite:///<path to .db file>")
        check_writable(database.parent, field)
    elif scheme in ("file", ""):
        check_writable(Path(rest.removeprefix("//") if scheme else uri), field)
    elif scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5) as response:
                response.read(64)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConfigError(f"{field}: {uri!r}: the MLflow server does not answer ({reason}); start it or "
                              f"fix the address") from None


def reads(prune: PruneConfig, option: str) -> bool:
    """Whether a run pruning as ``prune`` says reads ``prune.<option>``."""
    if option in POSTHOC_ONLY:
        return False
    mode_specific = any(option in options for options in MODE_OPTIONS.values())
    if is_dense(prune.method):
        return not (option in METHOD_OPTIONS or option in CONFIG_OPTIONS or mode_specific)
    if option in CONFIG_OPTIONS:
        return describe(prune.method).takes(option)
    return not mode_specific or option in MODE_OPTIONS[prune.mode]


def changed_options(prune: PruneConfig) -> list[str]:
    """``prune.*`` options set to a value other than their default."""
    defaults = PruneConfig()
    return [name for name in PruneConfig.model_fields if getattr(prune, name) != getattr(defaults, name)]


def where_used(option: str) -> str:
    """A short phrase saying which runs read ``prune.<option>``."""
    if option in POSTHOC_ONLY:
        return "read by python -m ticketbert.posthoc only (its --levels default)"
    for mode, options in MODE_OPTIONS.items():
        if option in options:
            return f"read by prune.mode {mode} with a pruning method"
    if option in CONFIG_OPTIONS:
        return f"read by method {either([d.name for d in descriptions() if d.takes(option)])}"
    return "read by a pruning method, not by method none"


def check_prune_options(prune: PruneConfig, field: str = "prune") -> None:
    """ConfigError naming the first option this run sets and never reads."""
    for option in changed_options(prune):
        if not reads(prune, option):
            raise ConfigError(f"{field}.{option}: {getattr(prune, option)!r} does nothing in this run (method "
                              f"{prune.method}, mode {prune.mode}): {where_used(option)}; remove it")


def check_environment(config: RunConfig, *, local_device: bool = True) -> EncoderInfo:
    """The device, encoder, data location and MLflow store of ``config``; the encoder found.
    ``local_device=False`` skips the device (the run happens elsewhere, e.g. on a Ray cluster)."""
    if local_device:
        check_device(config.train.device)
    encoder = check_encoder(config.model.encoder)
    if config.data.dir is not None and config.data.source in ("auto", "csv") and not config.data.dir.is_dir():
        raise ConfigError(f"data.dir: {str(config.data.dir)!r} is not a folder; give the folder of the task files")
    resolve_source(config.data)  # the source auto resolves to: DataError if it is missing
    check_tracking(config.tracking)
    return encoder


@dataclass(frozen=True)
class EncoderShape:
    """Prunable weights of an encoder, from its config.json: per layer, its attention heads' (Q, K,
    V, output) and its FFN neurons' (in, out) matrices."""

    layers: int
    attention: int
    ffn: int

    def unit_weights(self, unit: str) -> int:
        """Prunable weights all units of kind ``unit`` hold together."""
        return self.layers * {"heads": self.attention, "ffn": self.ffn, "layers": self.attention + self.ffn}[unit]

    @property
    def total(self) -> int:
        return self.unit_weights("layers")


def encoder_shape(config: dict[str, Any]) -> EncoderShape | None:
    """The shape a uniform BERT-family config.json declares (BERT, RoBERTa, DeBERTa-v2, DistilBERT,
    ModernBERT key names); None when it does not (another layout, or a pruned per-layer structure)."""
    def first(*keys: str) -> int | None:
        return next((config[k] for k in keys if isinstance(config.get(k), int)), None)

    hidden, layers = first("hidden_size", "dim"), first("num_hidden_layers", "n_layers")
    intermediate = first("intermediate_size", "hidden_dim")
    if STRUCTURE_KEY in config or None in (hidden, layers, intermediate):
        return None
    ffn_matrices = 3 if config.get("model_type") == "modernbert" else 2  # gated FFN: its input matrix is 2x wide
    return EncoderShape(layers, 4 * hidden * hidden, ffn_matrices * hidden * intermediate)


def reachable_sparsity(description: MethodDescription, shape: EncoderShape) -> float:
    """The largest sparsity ``description``'s limit rule allows on an encoder of ``shape``."""
    if description.limit == "units":
        return sum(shape.unit_weights(unit) for unit in description.units) / shape.total
    if description.limit == "all_but_one_unit" and description.units == ("layers",):
        return 1.0 - 1.0 / shape.layers
    return 1.0


def check_sparsity(prune: PruneConfig, encoder: EncoderInfo, field: str = "prune.sparsity") -> None:
    """``prune.sparsity`` within what the method can remove from this encoder (read from config.json)."""
    shape = encoder_shape(encoder.config)
    if is_dense(prune.method) or shape is None:
        return
    described = describe(prune.method)
    limit = reachable_sparsity(described, shape)
    if prune.sparsity > limit + 1e-9:
        why = "one layer stays" if described.limit == "all_but_one_unit" else "what its units hold"
        raise ConfigError(f"{field}: {prune.sparsity:g} is more than method {prune.method} can remove from "
                          f"{encoder.name}: at most {limit:.1%} of the prunable weights ({why})")


def check_run(config: RunConfig) -> EncoderInfo:
    """Every load-time check of a training run; the encoder found."""
    check_prune_options(config.prune)
    encoder = check_environment(config)
    check_sparsity(config.prune, encoder)
    check_writable(config.output_dir, "output_dir")
    if config.prune.dense_dir is not None:
        check_writable(config.prune.dense_dir, "prune.dense_dir")
    return encoder
