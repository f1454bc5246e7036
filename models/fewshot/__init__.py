"""Offline few-shot meta-training (issue 4), in the style of easyfsl.

* :mod:`.base`: the :class:`FewShotClassifier` interface (support set in, query scores out);
* :mod:`.methods`: one method per module behind it;
* :mod:`.backbones`: Conv-4 and the face encoders as injected backbones;
* :mod:`.data`, :mod:`.samplers`: datasets, splits, face-chip cache, episodes and P x K batches;
* :mod:`.train`, :mod:`.evaluate`, :mod:`.export`, :mod:`.cli`: the loop, the figures, the service checkpoint, the commands.
"""

from .base import FewShotClassifier

__all__ = ["FewShotClassifier"]
