"""The data sets meta-training reads, one per module, after easyfsl's ``easyfsl/datasets``.

* :mod:`.tensor_images`: :class:`TensorImageDataset`, the in-memory split every data set ends up in;
* :mod:`.image_folder`: ``root/<class>/<image>`` folders and the identity-disjoint split of their names;
* :mod:`.omniglot`: Omniglot's background characters, their split, and Lake et al.'s one-shot runs;
* :mod:`.face_chips`: photos detected and aligned once into a resumable chip cache.

Split rules (seeded, documented in :func:`.image_folder.split_identities` and
:func:`.omniglot.split_omniglot`) decide which classes are for training,
validation and testing; no class is in two splits.
"""
