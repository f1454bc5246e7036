"""Few-shot methods, one per module, all :class:`~models.fewshot.base.FewShotClassifier` subclasses."""

from .finetune import Finetune
from .maml import MAML
from .matching import MatchingNetworks
from .metric_losses import MetricLearning
from .prototypical import PrototypicalNetworks
from .relation import RelationNetworks
from .siamese import SiameseNetworks

__all__ = [
    "Finetune",
    "MAML",
    "MatchingNetworks",
    "MetricLearning",
    "PrototypicalNetworks",
    "RelationNetworks",
    "SiameseNetworks",
]
