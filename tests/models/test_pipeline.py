"""Photo -> faces -> embeddings, end to end on real photos."""

import itertools
import json

import cv2
import numpy as np
import pytest

from app.cli import main as cli_main
from models.errors import MultipleFaces, NoFace
from models.imageio import load_image
from models.pipeline import centre_weighted_face, select_one_face


def embed_main(pipeline, path):
    image = load_image(path)
    face = centre_weighted_face(pipeline.detect(image), image.shape)
    return pipeline.embed_faces(image, [face])[0].embedding


def test_one_face_with_box_landmarks_and_unit_embedding(pipeline, photos):
    faces = pipeline.analyze(load_image(photos["Emma_Watson"][0]))
    assert len(faces) == 1
    f = faces[0]
    x1, y1, x2, y2 = f.face.box
    assert 0 <= x1 < x2 <= 250 and 0 <= y1 < y2 <= 250
    assert 50 < x2 - x1 < 200
    # eyes above the nose, nose above the mouth
    eyes_y = f.face.landmarks[:2, 1].mean()
    assert eyes_y < f.face.landmarks[2, 1] < f.face.landmarks[3:, 1].mean()
    assert f.embedding.shape == (128,)
    assert abs(np.linalg.norm(f.embedding) - 1) < 1e-5


def test_same_person_closer_than_different_people(pipeline, photos):
    people = [p for p, files in photos.items() if len(files) >= 3]
    emb = {p: [embed_main(pipeline, f) for f in photos[p]] for p in people}
    same = [np.linalg.norm(a - b) for p in people for a, b in itertools.combinations(emb[p], 2)]
    diff = [np.linalg.norm(a - b) for p, q in itertools.combinations(people, 2) for a in emb[p] for b in emb[q]]
    assert np.mean(same) < np.mean(diff) - 0.15
    # and in the decision that matters: each photo's nearest other photo is the same person
    flat = [(p, e) for p in people for e in emb[p]]
    hits = 0
    for i, (p, e) in enumerate(flat):
        others = [(np.linalg.norm(e - e2), p2) for j, (p2, e2) in enumerate(flat) if j != i]
        hits += min(others)[1] == p
    assert hits / len(flat) >= 0.9


def test_no_face_in_a_plain_picture(pipeline):
    gradient = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))
    image = np.dstack([gradient] * 3)
    assert pipeline.analyze(image) == []
    with pytest.raises(NoFace):
        select_one_face(pipeline.detect(image))


def test_huge_and_tiny_photos_map_boxes_back(pipeline, photos):
    image = load_image(photos["Wen_Jiabao"][0])
    base = pipeline.detect(image)[0].box
    big = cv2.resize(image, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    box_big = pipeline.detect(big)[0].box
    assert np.allclose(box_big / 12.0, base, atol=6)
    x1, y1, x2, y2 = (int(v) for v in base)
    crop = image[max(0, y1 - 10) : y2 + 10, max(0, x1 - 10) : x2 + 10]
    small = cv2.resize(crop, (crop.shape[1] // 2, crop.shape[0] // 2), interpolation=cv2.INTER_AREA)
    faces = pipeline.detect(small)
    assert faces, "a 60-pixel face crop should still be found"
    assert faces[0].box[2] <= small.shape[1] + 1 and faces[0].box[3] <= small.shape[0] + 1


@pytest.mark.parametrize("shape", [(1, 250), (250, 1), (6000, 3), (12, 40000)])
def test_slivers_have_no_face_and_do_not_crash(pipeline, shape):
    # Found by the upload fuzzer: a JPEG whose SOF claimed an extreme aspect ratio crashed MTCNN
    # (an empty image pyramid); upscaling a thin strip could also have exhausted memory.
    assert pipeline.detect(np.full((*shape, 3), 128, np.uint8)) == []


def test_two_faces_of_equal_size_are_ambiguous_for_enrollment(pipeline, photos):
    a, b = load_image(photos["Emma_Watson"][0]), load_image(photos["Robert_Blake"][0])
    faces = pipeline.detect(np.hstack([a, b]))
    assert len(faces) == 2
    with pytest.raises(MultipleFaces) as e:
        select_one_face(faces)
    assert len(e.value.details["faces"]) == 2
    # the caller picks one by its box
    chosen = select_one_face(faces, box=tuple(faces[1].box))
    assert chosen is faces[1]


def test_cli_embed_and_compare(photos, capsys):
    a, b = photos["Javier_Solana"][0], photos["Javier_Solana"][1]
    assert cli_main(["embed", str(a), "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    face = out["images"][0]["faces"][0]
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and len(face["embedding"]) == 128

    assert cli_main(["compare", str(a), str(b), "--device", "cpu"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert cli_main(["compare", str(a), str(photos["Emma_Watson"][0]), "--device", "cpu"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert same["distance"] < diff["distance"]
    assert same["match"] is True and diff["match"] is False


def test_cli_reports_bad_input_as_typed_error(tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    assert cli_main(["embed", str(bad), "--device", "cpu"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["images"][0]["error"]["code"] == "invalid_image"


def test_detection_with_opencvs_resize_finds_the_same_faces_and_leaves_the_library_alone(photos):
    """Issue 15: the pyramid and crop resizes by OpenCV (the default) move landmarks a little, never the face found;
    the library's own resize is still what facenet-pytorch's module holds, and "torch" reproduces MTCNN.detect."""
    import facenet_pytorch.models.utils.detect_face as library

    from models.detection import FaceDetector

    before = library.imresample
    fast, reference = FaceDetector("cpu"), FaceDetector("cpu", pyramid_resize="torch")
    assert fast.pyramid_resize == "opencv" and fast.cache_parts() != reference.cache_parts()
    for files in photos.values():
        image = load_image(files[0])
        a, b = fast.detect(image), reference.detect(image)
        assert len(a) == len(b) >= 1
        assert np.abs(a[0].landmarks - b[0].landmarks).max() < 0.1 * b[0].width
        _, _, points = reference._mtcnn.detect(image, landmarks=True)  # the library's own run: one of its faces
        assert min(np.abs(np.asarray(p, float) - b[0].landmarks).max() for p in points) < 1e-4
    assert library.imresample is before
