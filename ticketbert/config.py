"""Typed run configuration, loaded from YAML and validated on load.

Every field error is reported as one line naming the dotted field, e.g.
``train.lr: Input should be greater than 0 (got -1)``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ticketbert.pruning.methods.description import (CONFIG_OPTIONS, DENSE, TRAINING_CRITERIA, describe,
                                                    descriptions, import_plugins, is_dense, method_names)
from ticketbert.defaults import DEFAULT_ENCODER
from ticketbert.pruning.nm_pattern import parse_pattern, pattern_text, resolve_sparsity
from ticketbert.tasks.definition import TaskDefinition
from ticketbert.tasks.shipped import SHIPPED_NAMES, shipped_definitions, shipped_raw

TaskName = Annotated[str, Field(min_length=1)]  # a shipped task or one declared under `tasks:`
SparsityLevel = Annotated[float, Field(ge=0.0, lt=1.0)]  # fraction of prunable weights removed
DEFAULT_BATCH_SIZE = 32  # per task, where train.batch_size has no entry
# model fields that moved into the shipped Quora task's declaration
LEGACY_MODEL_FIELDS = {"para_encoder": "encoding", "para_features": "features"}


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the field."""


class _Strict(BaseModel):
    # no unknown keys; no inf or NaN in any float field
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def unique(values: list[Any]) -> list[Any]:
    """A list validator: every value at most once (repeats would give trials one label and folder)."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"values repeat: {', '.join(repeated)}; give each once")
    return values


class DataConfig(_Strict):
    # where examples come from: "auto" = `dir` or $TICKETBERT_DATA_DIR if set, else the bundled
    # real sample ("sample"); "synthetic" (meaningless metrics) only when asked for
    source: Literal["auto", "csv", "sample", "hub", "synthetic"] = "auto"
    dir: Path | None = None
    # tokenisation
    max_length: int = Field(128, ge=8, le=512)
    # seeded caps on examples per task and split (None = all); for CPU-sized runs
    max_train_examples: int | None = Field(None, ge=1)
    max_dev_examples: int | None = Field(None, ge=1)
    # fixed, seeded train subsample evaluated after every epoch (overfitting analysis)
    train_eval_examples: int = Field(1000, ge=1)
    # examples per task and split of the synthetic generator
    synthetic_examples: int = Field(600, ge=8)
    # sentence-pair tasks are symmetric: also train on every pair in swapped order
    swap_pairs: bool = False


class ModelConfig(_Strict):
    # any Hugging Face BERT-family checkpoint: hub id or directory; the default is bundled
    encoder: str = DEFAULT_ENCODER
    pooling: Literal["cls", "mean"] = "mean"
    # dropout before every task head (the reference study's 30%)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)


class TrainConfig(_Strict):
    tasks: list[TaskName] = Field(default_factory=lambda: ["sst"], min_length=1)
    epochs: int = Field(3, ge=1)
    lr: float = Field(2e-5, gt=0.0, le=1.0)
    # per task; tasks without an entry use DEFAULT_BATCH_SIZE
    batch_size: dict[TaskName, int] = Field(default_factory=dict)
    eval_batch_size: int = Field(128, ge=1)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    seed: int = 0
    # multitask: interleave batches task by task, or in a random order proportional to size
    sampling: Literal["round_robin", "proportional"] = "round_robin"
    device: str = "auto"
    # bf16 autocast: "auto" where the device computes bf16 natively (CUDA with bf16, CPUs with
    # AVX512-BF16/AMX), true everywhere (emulated on other CPUs: slow), false never
    bf16: Literal["auto", True, False] = "auto"
    progress: bool = True

    _unique_tasks = field_validator("tasks")(unique)

    def batch_size_of(self, task: str) -> int:
        """Training batch size of ``task``."""
        return self.batch_size.get(task, DEFAULT_BATCH_SIZE)

    @field_validator("batch_size")
    @classmethod
    def _positive_batches(cls, sizes: dict[str, int]) -> dict[str, int]:
        for task, size in sizes.items():
            if size < 1:
                raise ValueError(f"batch size of {task} must be >= 1 (got {size})")
        return sizes

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
            raise ValueError("device must be auto, cpu, cuda or cuda:N (N a device index)")
        return device


def check_method(method: str) -> str:
    """``method`` is "none" (no pruning) or a registered method (``ticketbert.pruning.methods``)."""
    if not is_dense(method) and method not in method_names():
        raise ValueError(f"unknown method {method!r}; known: {DENSE}, {', '.join(method_names())}")
    return method


def check_criterion(criterion: str) -> str:
    """``criterion`` is one that some registered method ranks by."""
    known = sorted({c for d in descriptions() for c in d.criteria})
    if criterion not in known:
        raise ValueError(f"unknown criterion {criterion!r}; known: {', '.join(known)}")
    return criterion


PruneMethod = Annotated[str, AfterValidator(check_method)]  # "none" or a registered pruning method
Criterion = Annotated[str, AfterValidator(check_criterion)]  # l1, taylor, ...: each method lists those it takes


def options_not_taken(method: str) -> dict[str, None]:
    """The ``prune.*`` method options (repair, budget, ...) that ``method`` does not take, cleared."""
    if is_dense(method):
        return {}
    return {option: None for option in CONFIG_OPTIONS if option in PruneConfig.model_fields
            and not describe(method).takes(option)}


class PruneConfig(_Strict):
    method: PruneMethod = DENSE
    # fraction of prunable encoder weights removed, in [0, 1)
    sparsity: SparsityLevel = 0.0
    criterion: Criterion | None = None  # None: the method's default
    # which weights or units compete: all at once, within each matrix/layer, or within each output row
    # (wanda); None: the method's default (see `resolved_scope`)
    scope: Literal["global", "layer", "row"] | None = None
    # N:M semi-structured sparsity ("2:4": at most N non-zero weights in every M consecutive input
    # weights of a row) for magnitude, wanda and sparsegpt; `sparsity` left out is 1 - N/M
    pattern: str | None = None
    # sparsegpt: columns processed per block (None: 128)
    block_size: int | None = Field(None, ge=1)
    # sparsegpt: Hessian damping, a fraction of its mean diagonal (None: 0.01)
    damping: float | None = Field(None, gt=0.0)
    # when the mask is drawn: after fine-tuning, early in training, or iteratively with rewinding
    mode: Literal["posthoc", "early_bird", "imp"] = "posthoc"
    # sparsity levels of `python -m ticketbert.posthoc` (its --levels default); no other command reads them
    levels: list[SparsityLevel] = Field(default_factory=list)
    recovery_epochs: int = Field(0, ge=0)
    # recovery with distillation: task loss + distill_alpha x loss towards the dense model's
    # outputs (KL at distill_temperature on logits; squared error on STS scores); 0 = plain recovery
    distill_alpha: float = Field(0.0, ge=0.0)
    distill_temperature: float = Field(2.0, gt=0.0)
    calibration_examples: int = Field(256, ge=1)
    # retraining-free repair of heads / ffn / heads+ffn: least-squares rescaling of the kept units
    repair: Literal["lstsq"] | None = None
    # heads+ffn: what `sparsity` is a fraction of (FLOPs per token or prunable weights), and
    # kept FFN neurons per layer rounded to a multiple of round_to
    budget: Literal["flops", "weights"] | None = None
    round_to: int | None = Field(None, ge=1)
    # post-hoc: where the shared fine-tuned dense model lives (None: inside this run's folder)
    dense_dir: Path | None = None
    # early-bird: search phase. Ticket when `window` consecutive mask distances are < `epsilon`
    # (You et al. 2020: 5 and 0.1), or at `max_steps`
    early_bird_interval: int = Field(20, ge=1)  # optimizer steps between mask draws
    early_bird_window: int = Field(5, ge=1)
    early_bird_epsilon: float = Field(0.1, gt=0.0, le=1.0)
    early_bird_max_steps: int = Field(300, ge=1)
    # what masks are drawn from: "training" sums the gate gradients of the training steps' own
    # backward (taylor, fisher, fisher_batch) or wanda's input norms of their forwards (activation),
    # no extra pass; "calibration" scores calibration_examples per task at every draw; "auto":
    # training for those criteria
    early_bird_draws: Literal["auto", "training", "calibration"] = "auto"
    # peak learning rate while the ticket is searched (None: train.lr); same schedule shape, and
    # the step after pruning continues at the run's own schedule
    early_bird_search_lr: float | None = Field(None, gt=0.0, le=1.0)
    # iterative pruning (magnitude, wanda): rounds to reach `sparsity`, each rewound to pre-trained weights
    imp_rounds: int = Field(3, ge=1)

    def for_method(self, method: str, **update: Any) -> "PruneConfig":
        """This config for ``method`` (and ``update``), with the method options it does not take
        cleared: an option set for several methods applies to those that take it."""
        return PruneConfig.model_validate({**self.model_dump(), **options_not_taken(method), **update,
                                           "method": method})

    @model_validator(mode="before")
    @classmethod
    def _sparsity_of_pattern(cls, raw: Any) -> Any:
        """A pattern with no sparsity given prunes ``1 - N/M``."""
        if isinstance(raw, dict) and isinstance(raw.get("pattern"), (str, int)):  # else: the field says what is wrong
            raw = {**raw, "pattern": pattern_text(raw["pattern"])}
            if "sparsity" not in raw:
                raw["sparsity"] = parse_pattern(raw["pattern"]).sparsity
        return raw

    @property
    def resolved_scope(self) -> str:
        """``scope``, or the method's default scope when unset."""
        return self.scope or describe(self.method).default_scope

    @model_validator(mode="after")
    def _method_fits_mode(self) -> "PruneConfig":
        if self.mode != "early_bird":
            for option, default in (("early_bird_draws", "auto"), ("early_bird_search_lr", None)):
                if getattr(self, option) != default:
                    raise ValueError(f"prune.{option} applies to prune.mode early_bird, got mode {self.mode!r}")
        if is_dense(self.method):
            return self
        described = describe(self.method)
        criterion = described.check_criterion(self.criterion)
        described.check_mode(self.mode)
        described.check_scope(self.resolved_scope)
        if self.pattern is not None:
            nm = parse_pattern(self.pattern)
            resolve_sparsity(self.sparsity, nm)
            if self.mode == "imp":
                raise ValueError(f"pattern: imp grows the sparsity round by round; N:M fixes it at {nm.sparsity:g} "
                                 f"(use mode posthoc or early_bird)")
            if self.block_size is not None and self.block_size % nm.m:
                raise ValueError(f"block_size {self.block_size} is not a multiple of pattern {nm}'s M ({nm.m})")
        described.check_options(**{option: getattr(self, option) for option in CONFIG_OPTIONS
                                   if option in type(self).model_fields})
        if self.early_bird_draws == "training" and criterion not in TRAINING_CRITERIA:
            raise ValueError(f"prune.early_bird_draws: training draws sum gate gradients or input norms; criterion "
                             f"must be {', '.join(TRAINING_CRITERIA)}, got method {self.method!r} with criterion "
                             f"{criterion!r}")
        if self.distill_alpha > 0 and self.recovery_epochs == 0 and self.mode == "posthoc":
            raise ValueError("prune.distill_alpha distils during recovery: set prune.recovery_epochs >= 1")
        return self


class TrackingConfig(_Strict):
    enabled: bool = True
    # MLflow tracking URI; None = $MLFLOW_TRACKING_URI or sqlite:///<cwd>/mlruns/mlflow.db
    uri: str | None = None
    experiment: str = "ticketbert"
    run_name: str | None = None


def merge_task_declarations(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` config with its ``tasks:`` entries for shipped names laid over the shipped
    declarations (``tasks: {para: {encoding: cross}}``), and the legacy ``model.para_encoder`` /
    ``model.para_features`` moved to ``tasks.para`` (their replacement)."""
    if not isinstance(raw, dict):
        return raw
    model = raw.get("model")
    if not isinstance(raw.get("tasks") or {}, dict):
        return raw  # not a mapping: the tasks field itself says so, naming it
    tasks = dict(raw.get("tasks") or {})
    if isinstance(model, dict) and set(model) & set(LEGACY_MODEL_FIELDS):
        model = dict(model)
        legacy = {LEGACY_MODEL_FIELDS[key]: model.pop(key) for key in list(model) if key in LEGACY_MODEL_FIELDS}
        for old, new in LEGACY_MODEL_FIELDS.items():
            if new in legacy:
                warnings.warn(f"model.{old} is replaced by tasks.para.{new}", FutureWarning, stacklevel=2)
        tasks["para"] = merge(legacy, tasks.get("para") or {})
        raw = {**raw, "model": model}
    if not tasks:
        return raw
    merged = {name: merge(shipped_raw()[name], value) if name in SHIPPED_NAMES and isinstance(value, dict) else value
              for name, value in tasks.items()}
    return {**raw, "tasks": merged}


class RunConfig(_Strict):
    name: str = "run"
    # modules imported before the rest is read: they register pruning methods of their own
    plugins: list[str] = Field(default_factory=list)
    # declared tasks: name -> definition (a shipped name starts from its shipped declaration)
    tasks: dict[str, TaskDefinition] = Field(default_factory=dict)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    # checkpoints and the final model go here
    output_dir: Path = Path("runs")

    @model_validator(mode="before")
    @classmethod
    def _import_plugins_and_merge_declarations(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and isinstance(raw.get("plugins"), list):
            import_plugins([str(module) for module in raw["plugins"]])
        return merge_task_declarations(raw)

    @model_validator(mode="after")
    def _known_tasks(self) -> "RunConfig":
        check_task_names(self.train.tasks, self.tasks, "train.tasks")
        return self

    def task_definition(self, name: str) -> TaskDefinition:
        """The declaration of task ``name``: declared under ``tasks:``, else shipped."""
        return self.tasks.get(name) or shipped_definitions()[name]


def check_task_names(names: list[str], declared: dict[str, TaskDefinition], field: str) -> None:
    """ValueError naming ``field`` if a task is neither declared nor shipped."""
    for name in names:
        if name not in declared and name not in SHIPPED_NAMES:
            raise ValueError(f"{field}: unknown task {name!r}; declared: {sorted(declared)}, "
                             f"shipped: {list(SHIPPED_NAMES)}")


def resolve_task_paths(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``raw`` config with the relative ``files`` (and local ``dataset.path``) of its declared
    tasks resolved against ``folder`` (the config file's)."""
    tasks = raw.get("tasks")
    if not isinstance(tasks, dict):
        return raw
    resolved = {}
    for name, value in tasks.items():
        if isinstance(value, dict):
            value = dict(value)
            if isinstance(value.get("files"), dict):
                value["files"] = {split: str((folder / path).resolve()) if not Path(str(path)).is_absolute() else path
                                  for split, path in value["files"].items()}
            dataset = value.get("dataset")
            if isinstance(dataset, dict) and isinstance(dataset.get("path"), str) and (folder / dataset["path"]).exists():
                value["dataset"] = {**dataset, "path": str((folder / dataset["path"]).resolve())}
        resolved[name] = value
    return {**raw, "tasks": resolved}


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line per invalid field: ``source: field.path: message (got value)``."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        got = item.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        if not item["loc"]:  # a check across fields: its message names them
            lines.append(f"{source}: {message}")
            continue
        field = ".".join(str(part) for part in item["loc"])
        lines.append(f"{source}: {field}: {message}{shown}")
    return "\n".join(lines)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["train.lr=1e-4", "train.tasks=[sst,sts]"]`` -> nested dict; values parsed as YAML."""
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected dotted.key=value")
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else None
    return nested


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a clear error naming the file otherwise."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return raw


def validate(schema: type[BaseModel], raw: dict[str, Any], source: str) -> Any:
    """Validate ``raw`` against ``schema``, raising ConfigError with one line per bad field."""
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a RunConfig from YAML (or defaults) plus dotted ``key=value`` overrides."""
    raw = read_yaml(Path(path)) if path is not None else {}
    raw = resolve_task_paths(merge(raw, parse_overrides(overrides or [])), config_folder(path))
    return validate(RunConfig, raw, str(path) if path is not None else "<config>")


def config_folder(path: str | Path | None) -> Path:
    """Where a config's relative task files resolve: the file's folder (the working directory without one)."""
    return Path(path).resolve().parent if path is not None else Path.cwd()
