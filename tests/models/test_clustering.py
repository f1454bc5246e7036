"""Unknown visitors grouped as their faces arrive (issue 29, point 4), on real faces: the fixture's LFW photos,
embedded by the default encoder with its shipped calibration."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from models.clustering import UnknownClusters
from models.errors import CannotLink
from models.pipeline import centre_weighted_face
from models.prototypes import prototype


@pytest.fixture(scope="module")
def faces(pipeline, photos) -> dict[str, tuple[str, np.ndarray]]:
    """photo name -> (person, unit embedding) for every fixture photo (8 people with 3, 4 with 1)."""
    from models.imageio import load_image

    out = {}
    for person, paths in photos.items():
        for path in paths:
            image = load_image(path)
            face = centre_weighted_face(pipeline.detect(image), image.shape)
            out[path.stem] = (person, pipeline.embed_faces(image, [face])[0].embedding)
    return out


@pytest.fixture(scope="module")
def calibration(pipeline):
    return pipeline.encoder.calibration


def stream(calibration, faces, order, **options) -> UnknownClusters:
    clusters = UnknownClusters(calibration, 128, **options)
    for name in order:
        clusters.add(name, faces[name][1], quality=0.5)
    return clusters


def pairs(clusters: UnknownClusters, faces) -> tuple[int, int, int]:
    """(same-group pairs, of them the same person, same-person pairs)."""
    labels = clusters.labels()
    together = right = truth = 0
    for a, b in combinations(sorted(labels), 2):
        same_person = faces[a][0] == faces[b][0]
        truth += same_person
        if labels[a] == labels[b]:
            together += 1
            right += same_person
    return together, right, truth


# The fixture holds a look-alike pair of strangers (Robert_Blake_0002, Yasar_Yakis_0001) 0.360 apart, closer than
# all but 0.044 % of stranger pairs by the calibration: any rate whose first threshold is above that lets it merge
# in some orders (the default 1 % does in about half). At 0.03 % the bar starts at 0.353 and only tightens, so no
# order can join them; bench/cluster_unknowns.py measures the default on 100 to 10,000 events.
STRICT = 3e-4


def test_two_people_never_share_a_group_and_one_persons_photos_do(calibration, faces):
    names = sorted(faces)
    recalls = []
    for seed in range(20):  # arrival order matters to an online rule: many orders
        order = list(np.random.default_rng(seed).permutation(names))
        clusters = stream(calibration, faces, order, false_merge_rate=STRICT)
        assert clusters.thresholds()[1] < 0.3603
        together, right, truth = pairs(clusters, faces)
        assert together == right, f"order {seed}: two people in one group"
        recalls.append(right / truth)
        for c in clusters.clusters():  # every prototype is the one prototype rule over the group's faces
            members = np.stack([faces[f][1] for f in clusters.members(c)])
            np.testing.assert_allclose(clusters.prototype(c), prototype(members), atol=1e-5)
    # 24 same-person pairs among 8 people: most orders put each person in one group (0.91 on average)
    assert np.mean(recalls) >= 0.85, recalls
    assert min(recalls) >= 0.8, recalls


def test_a_stricter_rate_never_joins_more(calibration, faces):
    order = sorted(faces)
    loose, strict = stream(calibration, faces, order, false_merge_rate=0.05), \
        stream(calibration, faces, order, false_merge_rate=1e-6)
    assert len(strict) >= len(loose)
    assert strict.thresholds()[1] < loose.thresholds()[1]


def test_thresholds_tighten_as_groups_accumulate(calibration):
    rng = np.random.default_rng(0)
    clusters = UnknownClusters(calibration, 128)
    first = clusters.thresholds()[1]
    for i in range(200):  # random directions: 200 groups of one
        clusters.add(i, rng.normal(size=128))
    assert len(clusters) == 200
    assert clusters.thresholds()[1] < first


def test_merge_split_and_best_faces(calibration, faces):
    clusters = UnknownClusters(calibration, 128)
    a = [clusters.add(n, faces[n][1], quality=q).cluster
         for n, q in (("Emma_Watson_0001", 0.2), ("Emma_Watson_0002", 0.9), ("Emma_Watson_0003", 0.5))]
    b = clusters.add("John_Travolta_0001", faces["John_Travolta_0001"][1]).cluster
    assert len(set(a)) == 1 and b != a[0]
    emma = a[0]
    assert clusters.best_faces(emma, k=2) == ["Emma_Watson_0002", "Emma_Watson_0003"]
    assert clusters.best_faces(emma) == ["Emma_Watson_0002", "Emma_Watson_0003", "Emma_Watson_0001"]

    alone = clusters.split_off("Emma_Watson_0001")
    assert clusters.members(alone) == ["Emma_Watson_0001"] and clusters.cluster_of("Emma_Watson_0001") == alone
    assert sorted(clusters.members(emma)) == ["Emma_Watson_0002", "Emma_Watson_0003"]
    np.testing.assert_allclose(clusters.prototype(emma), prototype(np.stack(
        [faces["Emma_Watson_0002"][1], faces["Emma_Watson_0003"][1]])), atol=1e-5)
    assert alone in clusters.cannot_links(emma)  # a split-off face was said to be someone else
    with pytest.raises(CannotLink):
        clusters.merge(emma, alone)

    # an admin's merge: the union, its prototype the rule's
    assert clusters.merge(emma, b) == emma and b not in clusters
    assert sorted(clusters.members(emma)) == ["Emma_Watson_0002", "Emma_Watson_0003", "John_Travolta_0001"]
    np.testing.assert_allclose(clusters.prototype(emma), prototype(np.stack(
        [faces[n][1] for n in ("Emma_Watson_0002", "Emma_Watson_0003", "John_Travolta_0001")])), atol=1e-5)
    with pytest.raises(CannotLink):  # the link followed neither away: still there after the merge
        clusters.merge(alone, emma)

    assert clusters.remove_cluster(alone) == ["Emma_Watson_0001"] and alone not in clusters
    assert clusters.cannot_links(emma) == set()


def test_a_cannot_link_holds_against_faces_that_would_join_the_groups(calibration, faces):
    """Two photos of one person in groups an admin separated: later photos of that person never bring them
    together, though without the link they do."""
    person = "Wen_Jiabao"
    names = [f"{person}_000{i}" for i in (1, 2, 3)]
    # each photo joins the others' group on its own (the data allows this test)
    together = stream(calibration, faces, names)
    assert len({together.cluster_of(n) for n in names}) == 1

    for linked in (True, False):
        clusters = UnknownClusters(calibration, 128)
        clusters.add(names[0], faces[names[0]][1])
        clusters.add(names[1], faces[names[1]][1])
        first, second = clusters.cluster_of(names[0]), clusters.split_off(names[1], different=linked)
        clusters.add(names[2], faces[names[2]][1])
        groups = {clusters.cluster_of(n) for n in names}
        if linked:
            assert clusters.cluster_of(names[0]) == first and clusters.cluster_of(names[1]) == second
            assert len(groups) == 2
        else:
            assert len(groups) == 1  # the third photo joined one and the grown group absorbed the other


def test_a_restored_state_is_the_state_and_decides_alike(calibration, faces):
    names = list(np.random.default_rng(3).permutation(sorted(faces)))
    first, rest = names[:20], names[20:]
    live = stream(calibration, faces, first)
    some = live.clusters()[0]
    if len(live.members(some)) > 1:
        live.split_off(live.members(some)[0])
    live.remove_face(first[-1])
    rows = [(f, faces[f][1], 0.5, c) for f, c in live.labels().items()]
    links = {tuple(sorted((a, b))) for a in live.clusters() for b in live.cannot_links(a)}
    again = UnknownClusters.restore(calibration, 128, rows, links)
    assert again.labels() == live.labels()
    for c in live.clusters():
        np.testing.assert_allclose(again.prototype(c), live.prototype(c), atol=1e-6)
        assert again.cannot_links(c) == live.cannot_links(c)
    for name in rest:  # the same next decisions, new group ids included
        assert again.add(name, faces[name][1]) == live.add(name, faces[name][1])


def test_a_face_is_grouped_once_and_removal_empties_groups(calibration, faces):
    clusters = UnknownClusters(calibration, 128)
    c = clusters.add("Yasar_Yakis_0001", faces["Yasar_Yakis_0001"][1]).cluster
    with pytest.raises(ValueError):
        clusters.add("Yasar_Yakis_0001", faces["Yasar_Yakis_0001"][1])
    clusters.remove_face("Yasar_Yakis_0001")
    assert c not in clusters and len(clusters) == 0
    assert clusters.thresholds() == UnknownClusters(calibration, 128).thresholds()
