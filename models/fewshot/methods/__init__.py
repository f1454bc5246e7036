"""Few-shot methods, one per module, all :class:`~models.fewshot.base.FewShotClassifier` subclasses."""

from models.fewshot.methods.finetune import Finetune
from models.fewshot.methods.maml import MAML
from models.fewshot.methods.matching import MatchingNetworks
from models.fewshot.methods.metric_losses import MetricLearning
from models.fewshot.methods.prototypical import PrototypicalNetworks
from models.fewshot.methods.relation import RelationNetworks
from models.fewshot.methods.siamese import SiameseNetworks

__all__ = [
    "Finetune",
    "MAML",
    "MatchingNetworks",
    "MetricLearning",
    "PrototypicalNetworks",
    "RelationNetworks",
    "SiameseNetworks",
]
