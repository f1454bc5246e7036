import json

import torch

from models.fewshot.augment import augment_characters, augment_faces
from models.fewshot.datasets.face_chips import prepare_face_chips
from models.fewshot.datasets.image_folder import ImageFolderDataset
from models.fewshot.datasets.omniglot import load_lake_runs, load_omniglot
from models.fewshot.datasets.tensor_images import TensorImageDataset

from .conftest import LAKE, LFW, OMNIGLOT


def test_omniglot_loads_inverted_28px_characters(omniglot):
    assert omniglot.image_shape == (1, 28, 28)
    assert omniglot.num_classes == 12 and len(omniglot) == 120
    assert omniglot.base_class_names[0] == "Greek/character01"
    x, y = omniglot.gather(range(len(omniglot)))
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x.mean() < 0.3  # strokes are 1 on a 0 background
    assert y.tolist() == omniglot.labels


def test_an_alphabet_in_two_roots_is_read_once(tmp_path):
    twice = load_omniglot([OMNIGLOT, OMNIGLOT])
    assert twice.num_classes == 12 and len(twice) == 120


def test_rotations_are_classes_of_their_own(omniglot):
    rotated = TensorImageDataset(
        omniglot.images, omniglot.base_labels, omniglot.base_class_names, std=255.0, rotations=True
    )
    assert rotated.num_classes == 48 and len(rotated) == 480
    n = len(omniglot)
    x, y = rotated.gather([3, 3 + n, 3 + 2 * n])
    assert y.tolist() == [omniglot.labels[3], omniglot.labels[3] + 12, omniglot.labels[3] + 24]
    assert torch.equal(x[1], torch.rot90(x[0], 1, dims=(1, 2)))
    assert torch.equal(x[2], torch.rot90(x[0], 2, dims=(1, 2)))
    assert rotated.class_names[13] == "Greek/character02@rot90"


def test_subset_classes_relabels(omniglot):
    sub = omniglot.subset_classes(["Latin/character02", "Greek/character01"])
    assert sub.base_class_names == ["Latin/character02", "Greek/character01"]
    assert sorted(set(sub.labels)) == [0, 1] and len(sub) == 20


def test_lake_runs_pair_items_with_classes():
    (run,) = load_lake_runs(LAKE)
    assert run.name == "run01" and run.support.shape == (20, 1, 28, 28) and run.queries.shape == (20, 1, 28, 28)
    # class_labels.txt: "run01/test/item01.png run01/training/class08.png" -> item 1 is class index 7
    assert run.query_labels[0].item() == 7
    assert sorted(run.query_labels.tolist()) == list(range(20))


def test_augmentations_keep_shape_and_range():
    faces = torch.rand(4, 3, 150, 150) * 255
    out = augment_faces(faces, generator=torch.Generator().manual_seed(0))
    assert out.shape == faces.shape and out.min() >= 0 and out.max() <= 255 and not torch.equal(out, faces)
    chars = torch.rand(4, 1, 28, 28)
    assert augment_characters(chars).shape == chars.shape


def test_face_chip_cache_is_complete_and_resumable(face_chips, dlib_ckpt):
    meta = json.loads((face_chips / "cache.json").read_text())
    assert meta["size"] == 150
    folder = ImageFolderDataset(face_chips)
    photos = ImageFolderDataset(LFW)
    failures = (face_chips / "failures.jsonl").read_text().splitlines()
    assert len(folder) + len(failures) == len(photos) and len(folder) >= len(photos) - 2
    chips = folder.load_tensors()
    assert chips.image_shape == (3, 150, 150)
    # A second run finds everything done and detects nothing again.
    stats = prepare_face_chips(LFW, face_chips, dlib_ckpt.metadata.alignment_template, 150, progress=False)
    assert stats["new"] == 0 and stats["cached_before"] + stats["failed_before"] == len(photos)


def test_chip_cache_refuses_another_template(face_chips):
    import pytest

    with pytest.raises(ValueError):
        prepare_face_chips(LFW, face_chips, [[0, 0]] * 5, 150, progress=False)
