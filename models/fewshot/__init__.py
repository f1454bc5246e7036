"""Offline few-shot meta-training (issue 4), in the style of easyfsl.

* :mod:`.base`: the :class:`~.base.FewShotClassifier` interface (support set in, query scores out);
* :mod:`.methods`: one method per module behind it;
* :mod:`.backbones`: Conv-4 and the face encoders as injected backbones;
* :mod:`.config`, :mod:`.factory`: the settings of a run, and the registry that builds its backbone and method;
* :mod:`.datasets`: one data set per module (image folders, Omniglot, cached face chips, the in-memory split);
* :mod:`.splits`, :mod:`.augment`, :mod:`.samplers`: a run's train/val/test classes, augmentation, episodes
  and P x K batches;
* :mod:`.train`, :mod:`.evaluate`, :mod:`.export`, :mod:`.cli`: the loop, the figures, the service checkpoint,
  the commands.

Nothing is imported here, so the command line can read :mod:`.config` and
:mod:`.factory` without loading torch.
"""
