"""The settings of one training run, :class:`TrainConfig`, and the checks that refuse settings no run can use."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from models.errors import TrainingError

#: settings that take one of a few words, and those words
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "miner": ("batch_hard", "semi_hard", "all"),
    "maml_head": ("learned", "zero"),
    "split_by": ("character", "alphabet"),
    "amp": ("auto", "bf16", "fp16", "off"),
    "trainable": ("all", "last"),
    "optimizer": ("adam", "sgd"),
}


@dataclass
class TrainConfig:
    """Every knob of a training run; a JSON config file and command-line flags set these names."""

    method: str = "protonet"
    dataset: str = "omniglot"  # "omniglot" | "faces"
    data: list[str] = field(default_factory=list)  # omniglot: background folders; faces: photo folder (or chip cache)
    cache_dir: str | None = None  # faces: where aligned chips are cached (default: under var/cache/faces)
    prepare_workers: int = 4
    out_dir: str = "artifacts/fewshot"
    # splits
    split_seed: int = 0
    split_by: str = "character"  # omniglot: "character" | "alphabet"
    test_fraction: float = 0.25  # omniglot
    val_fraction: float | None = None  # omniglot: of all characters (0.1); faces: of identities, hash rule (0.3)
    rotations: bool = True  # omniglot: 90-degree rotations as new training classes
    augment: bool = False
    min_images: int = 1
    # model
    backbone: str = "conv4"  # "conv4" | "dlib" | "facenet-vggface2" | path to an encoder checkpoint
    normalize: bool = False  # protonet: L2-normalise features (faces)
    scale: float = 1.0  # protonet / finetune / metric: logit scale on distances
    learn_scale: bool = False
    trainable: str = "all"  # face encoders: "all" | "last" (only the final projection learns)
    margin: float = 0.2  # triplet / contrastive (contrastive: different people pushed beyond it)
    pos_margin: float = 0.0  # contrastive: same-person pairs pulled inside it
    miner: str = "semi_hard"  # "batch_hard" | "semi_hard" | "all"
    full_context: bool = False  # matching networks
    inner_lr: float = 0.4  # maml
    inner_steps: int = 1
    eval_inner_steps: int = 3
    maml_head: str = "learned"  # "learned" | "zero"
    fine_tuning_steps: int = 25  # finetune (test time)
    entropy_weight: float = 1.0
    # episodes / batches
    n_way: int = 5
    n_shot: int = 1
    n_query: int = 5
    meta_batch: int = 1  # episodes per optimiser step (MAML's meta-batch)
    p: int = 32  # P x K batches (siamese, triplet, contrastive)
    k: int = 4
    steps_per_epoch: int = 500
    epochs: int = 10
    # optimisation
    optimizer: str = "adam"  # "adam" | "sgd" (momentum 0.9)
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_step_epochs: int = 0  # halve the learning rate every this many epochs (0: never)
    grad_clip: float = 0.0
    # validation
    val_n_way: int = 5
    val_n_shot: int = 1
    val_n_query: int = 5
    val_episodes: int = 200
    # run
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # "auto" (on with CUDA) | "bf16" | "fp16" | "off"
    resume: bool = False
    keep_epoch_checkpoints: bool = False

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        """A config from a JSON document's settings; a name that is no setting is refused, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise TrainingError(f"Unknown training settings: {', '.join(unknown)}")
        return cls(**raw)

    def validate(self) -> None:
        """Refuse settings no run can use (:class:`~models.errors.TrainingError`) and fill the dataset's defaults.
        The method's name is checked by :func:`models.fewshot.factory.check_config`, beside the registry of methods
        (importing it here would close a circle: the factory reads this config)."""
        if self.dataset not in ("omniglot", "faces"):
            raise TrainingError("dataset must be 'omniglot' or 'faces'")
        if not self.data:
            raise TrainingError("data: give the dataset folder(s)")
        for name, allowed in SETTING_CHOICES.items():
            if getattr(self, name) not in allowed:
                raise TrainingError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if (self.dataset == "omniglot") != (self.backbone == "conv4"):
            raise TrainingError(
                "Omniglot trains the conv4 backbone; faces train a face encoder (dlib, facenet-…, a checkpoint)"
            )
        if self.trainable == "last" and self.backbone == "conv4":
            raise TrainingError("trainable='last' is for face encoders: a Conv-4 learns from scratch")
        if self.method in ("maml", "fomaml") and self.maml_head == "learned":
            self.val_n_way = self.n_way  # a learned N-way head only classifies N ways
        if self.val_fraction is None:
            self.val_fraction = 0.1 if self.dataset == "omniglot" else 0.3
