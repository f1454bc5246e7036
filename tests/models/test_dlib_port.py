"""The PyTorch port of dlib's face ResNet computes what dlib computes."""

import numpy as np
import pytest
import torch

from models.encoders.dlib_format import DlibFormatError, read_dlib_net
from models.encoders.dlib_resnet import load_dlib_resnet
from models.encoders.dlib_resnet_assets import dlib_model_path
from models.imageio import load_image
from models.pipeline import centre_weighted_face

dlib = pytest.importorskip("dlib", reason="dlib-bin (the test extra) is needed to compare against dlib itself")


def test_reader_sees_the_published_architecture():
    net = read_dlib_net(dlib_model_path())
    kinds = [layer.kind for layer in net.layers]
    assert net.loss == "loss_metric_2"
    assert net.input_attrs["size"] == (150, 150)
    assert kinds.count("con_4") == 29
    assert kinds.count("add_prev_") == 14
    assert kinds[-1] == "fc_2"


def test_truncated_model_file_is_refused(tmp_path):
    data = dlib_model_path().read_bytes()
    bad = tmp_path / "cut.dat"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(DlibFormatError):
        read_dlib_net(bad)


def test_port_matches_dlib_on_real_aligned_faces(photos, pipeline):
    """Same 150x150 chips in, same 128-d descriptors out (max |diff| <= 1e-4), over >= 20 faces."""
    model, info = load_dlib_resnet(dlib_model_path())
    reference = dlib.face_recognition_model_v1(str(dlib_model_path()))
    chips = []
    for files in photos.values():
        for path in files:
            image = load_image(path)
            face = centre_weighted_face(pipeline.detect(image), image.shape)
            chips.append(pipeline.align(image, [face])[0])
    assert len(chips) >= 20
    ours = []
    mean = torch.tensor(info["mean_rgb"]).view(1, 3, 1, 1)
    with torch.inference_mode():
        x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float()
        ours = model((x - mean) / 256.0).numpy()
    theirs = np.array([np.array(reference.compute_face_descriptor(chip)) for chip in chips])
    assert np.abs(ours - theirs).max() <= 1e-4
