"""AnomalyAID's invariants (the issue's Done-when) on small problems with known answers: ignored
features get no attribution, KAM's overlap and the acceptance rule, the alignment of the two
stages, the precision of accepted pseudo labels, an untouched caller model, determinism."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from yw_plugin_anomalyaid import (
    FCN,
    AnomalyAID,
    cluster_labels,
    kam_overlap,
    permutation_importance,
)


def unlabelled_table(history):
    """{row index: (cluster label, overlap)} for the unlabelled rows stage 2 saw."""
    return {
        i: (c, o)
        for i, c, o in zip(history["unlabelled"], history["cluster_labels"], history["overlap"])
    }


# ---- the model and the attributions ----------------------------------------------------------


def test_fcn_is_split_into_embedding_and_linear_head():
    model = FCN(20).eval()
    x = torch.randn(5, 20)
    assert model.features(x).shape == (5, 32)
    assert isinstance(model.head, nn.Linear) and model.head.out_features == 2
    assert torch.equal(model(x), model.head(model.features(x)))
    images = FCN(64, hidden=16, layers=1, embedding=8, classes=3).eval()
    assert images(torch.rand(4, 1, 8, 8)).shape == (4, 3)


@pytest.mark.parametrize("local", ["deeplift", "grad_x_input"])
def test_features_the_model_ignores_get_zero_attribution(make_flows, runtime, local):
    data = make_flows(0, n=300)
    model = AnomalyAID().build_model(20, seed=0)
    ignored = [0, 5, 11, 19]
    with torch.no_grad():
        model.features[1].weight[:, ignored] = 0
    aid = AnomalyAID(pfi_repeats=3, local=local).fit(model, data.dataset(), runtime=runtime)
    explanation = aid.explain(data.x[:64]).check(data.x[:64])
    attributions = explanation.attributions.abs()
    assert attributions[:, ignored].max() < 1e-6
    assert attributions.sum() > 0
    # the global importance of an ignored feature is exactly zero too
    assert aid.global_importance[:, ignored].abs().max() == 0


def test_image_inputs_get_attributions_of_their_shape(runtime):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    aid = AnomalyAID(pfi_repeats=2, top_n=5)
    aid.fit(aid.build_model(64, seed=0), TensorDataset(x, y), runtime=runtime)
    explanation = aid.explain(x[:6]).check(x[:6])
    assert explanation.attributions.shape == (6, 1, 8, 8)
    assert aid.global_importance.shape == (2, 1, 8, 8)


def test_permutation_importance_is_the_accuracy_drop_when_a_feature_is_shuffled():
    """Embedding = x0 + x1, centroids at -1 and 1.5; class-1 rows are (1, 0) or (0, 1), so
    shuffling x0 (or x1) among them sends the rows that end at (0, 0) to class 0: about a
    quarter. Features 2 and 3 are never read."""
    features = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        features.weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
    centroids = torch.tensor([[-1.0], [1.5]])
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    first = torch.arange(200) < 100
    x[:, 0], x[:, 1] = first.float(), (~first).float()
    importance = permutation_importance(
        features, centroids, x, 1, repeats=20, generator=torch.Generator().manual_seed(0)
    )
    assert importance[2:].abs().max() == 0
    assert importance[:2].tolist() == pytest.approx([0.25, 0.25], abs=0.05)


def test_permutation_importance_of_a_lone_feature_is_zero_against_one_class():
    """The code's PFI scores one class's rows against their constant label: shuffling a column
    keeps its values, so a predictor that reads one feature alone keeps its accuracy."""
    features = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        features.weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    importance = permutation_importance(
        features,
        torch.tensor([[-1.0], [1.0]]),
        x,
        1,
        repeats=5,
        generator=torch.Generator().manual_seed(0),
    )
    assert importance.abs().max() == 0


# ---- KAM: the overlap and the acceptance rule ------------------------------------------------


def test_overlap_counts_the_shared_top_n_features():
    local = torch.tensor([[5.0, -4.0, 3.0, 0.1, 0.0], [0.0, 0.1, 0.2, -3.0, 9.0]])
    global_rows = torch.tensor([[1.0, 0.9, 0.0, 0.8, 0.0], [1.0, 0.9, 0.0, 0.8, 0.0]])
    # top-3 local {0, 1, 2} and {4, 3, 2}; top-3 global {0, 1, 3}
    assert kam_overlap(local, global_rows, 3).tolist() == pytest.approx([2 / 3, 1 / 3])
    assert kam_overlap(local, global_rows, 99).tolist() == [1.0, 1.0]  # top_n capped at F
    assert kam_overlap(local, global_rows, 1).tolist() == [1.0, 0.0]


def test_overlap_and_reliability_lie_in_the_unit_interval(trained):
    data, _, history, aid = trained
    overlap = torch.tensor(history["overlap"])
    assert ((overlap >= 0) & (overlap <= 1)).all()
    reliability = aid.explain(data.x).reliability
    assert ((reliability >= 0) & (reliability <= 1)).all()
    assert reliability.unique().numel() > 1


def test_pseudo_labels_only_where_overlap_reaches_threshold_never_on_noise(make_flows, train_with):
    # min_samples=3 leaves part of each batch as DBSCAN noise
    _, history, _ = train_with(make_flows(0), min_samples=3)
    table = unlabelled_table(history)
    noise = [i for i, (c, _) in table.items() if c < 0]
    assert noise and history["accepted"], "the problem must have noise and accepted rows"
    assert all(math.isnan(table[i][1]) for i in noise)
    assert not set(noise) & set(history["accepted"])
    for i, label in zip(history["accepted"], history["pseudo_labels"]):
        cluster, overlap = table[i]
        assert overlap >= 0.6 - 1e-6
        assert label == cluster
    rejected = [i for i, (c, o) in table.items() if c >= 0 and i not in set(history["accepted"])]
    assert all(table[i][1] < 0.6 for i in rejected)


def test_threshold_zero_accepts_every_clustered_row(make_flows, train_with):
    _, history, _ = train_with(make_flows(0), threshold=0.0)
    table = unlabelled_table(history)
    assert sorted(history["accepted"]) == sorted(i for i, (c, _) in table.items() if c >= 0)


def test_threshold_one_accepts_only_exact_top_n_agreement(make_flows, train_with):
    _, history, _ = train_with(make_flows(0), threshold=1.0, top_n=3)
    table = unlabelled_table(history)
    exact = sorted(i for i, (c, o) in table.items() if c >= 0 and o == 1.0)
    assert sorted(history["accepted"]) == exact
    assert any(o < 1 for _, o in table.values())


# ---- the two-stage training ------------------------------------------------------------------


def test_alignment_raises_the_agreement_of_the_two_stages(trained):
    """With require_fcn_agree (the alignment option), retraining on rows where the detector
    and the cluster label agree makes them agree on more unlabelled rows. Without it, on these
    flows, the cluster labels (nearest centroid in a ReLU embedding) drift and agreement can
    fall: the test pins the option the paper's "alignment of both stages" suggests."""
    _, _, history, _ = trained
    assert 0 <= history["agreement_before"] < history["agreement_after"] <= 1


def test_accepted_pseudo_labels_are_more_precise_than_all_cluster_labels(trained):
    """Precision against the hidden truth, over every stage-2 round (require_fcn_agree on)."""
    data, _, history, _ = trained
    truth = data.truth
    clusters = torch.tensor(history["cluster_labels"])
    rows = torch.tensor(history["unlabelled"])
    clustered = clusters >= 0
    all_precision = (clusters[clustered] == truth[rows[clustered]]).float().mean()
    accepted = torch.tensor(history["pseudo_labels"]) == truth[history["accepted"]]
    assert len(accepted) > 50
    assert accepted.float().mean() > all_precision


def test_explain_after_training_explains_the_trained_detector(trained):
    data, model, _, aid = trained
    explanation = aid.explain(data.x[:32]).check(data.x[:32])
    assert torch.equal(explanation.target, model(data.x[:32]).argmax(1))


def test_train_detector_leaves_the_callers_model_unchanged(make_flows, train_with):
    data = make_flows(1, n=400)
    model = AnomalyAID().build_model(20, seed=0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trained, _, _ = train_with(data, model=model)
    assert trained is not model
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"train_detector changed the caller's {k}"
    assert any(not torch.equal(v, before[k]) for k, v in trained.state_dict().items())


def test_same_seed_same_detector_and_history_global_rng_left_alone(make_flows, train_with):
    data = make_flows(2, n=400)
    rng = torch.get_rng_state()
    first, history, _ = train_with(data)
    assert torch.equal(torch.get_rng_state(), rng)
    torch.manual_seed(123)  # another global RNG state must not matter
    second, again, _ = train_with(data)
    assert history == again
    for (k, v), w in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(v, w), k


def test_supervised_variant_stops_after_stage_one(make_flows, train_with):
    data = make_flows(0, n=400)
    _, history, _ = train_with(data, training="supervised")
    assert history["accepted"] == [] and history["rounds"] == []
    assert history["agreement_before"] == history["agreement_after"]
    assert sorted(history["labelled"] + history["unlabelled"]) == list(range(len(data)))
    assert set(history["held_out"]) <= set(history["labelled"])


def test_self_training_accepts_exactly_the_confident_rows(make_flows, train_with):
    data = make_flows(0, n=400)
    _, history, _ = train_with(data, training="self-training")
    confident = {i for i, p in zip(history["unlabelled"], history["confidence"]) if p >= 0.9 - 1e-6}
    assert confident and set(history["accepted"]) == confident
    assert history["cluster_labels"] == [] and history["overlap"] == []


def test_cluster_labels_take_the_nearest_centroid_and_noise_stays_minus_one():
    emb = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [9.0, -9.0]])
    centroids = torch.tensor([[4.0, 4.0], [0.0, 1.0]])
    labels = cluster_labels(emb, centroids, eps=0.5, min_samples=2)
    assert labels.tolist() == [1, 1, 1, 0, 0, -1]
    # min_samples=1 (the code's): every row is in a cluster, here the lone row too
    assert cluster_labels(emb, centroids, eps=0.5, min_samples=1).tolist()[-1] in (0, 1)


def test_refreshed_centroids_are_the_stored_rows_embedded_by_the_current_detector():
    from yw_plugin_anomalyaid import FCN
    from yw_plugin_anomalyaid.interpret import embed
    from yw_plugin_anomalyaid.tos import ClassStore

    torch.manual_seed(0)
    old, new = FCN(4, hidden=8, embedding=3).eval(), FCN(4, hidden=8, embedding=3).eval()
    x, labels = torch.randn(10, 4), torch.tensor([0, 1] * 5)
    store = ClassStore(2)
    store.add(x, embed(old.features, x), labels)
    stale = store.centroids()
    fresh = store.centroids(new.features)
    for c in (0, 1):
        assert torch.allclose(stale[c], embed(old.features, x[labels == c]).mean(0))
        assert torch.allclose(fresh[c], embed(new.features, x[labels == c]).mean(0))
    assert not torch.allclose(stale, fresh)
