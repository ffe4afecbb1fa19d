"""The network block: the 14 link indices against networkx, direct sums and hand values; Node2Vec
and the interaction features."""

import networkx as nx
import numpy as np
import pytest

from yw_plugin_tcforecast.network import (
    INDEX_NAMES,
    _walks,
    interactions,
    link_indices,
    node2vec,
)

# 0-1, 0-2, 1-2, 1-3, 2-3, 3-4: degrees k = (2, 3, 3, 3, 1)
HAND_EDGES = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (3, 4)]
HAND_PAIRS = np.array([(0, 3), (1, 2), (0, 4), (1, 4)])


def adjacency(edges, n):
    a = np.zeros((n, n))
    for x, y in edges:
        a[x, y] = a[y, x] = 1.0
    return a


@pytest.fixture(scope="module")
def karate():
    g = nx.karate_club_graph()
    pairs = np.array([(x, y) for x in g for y in g if x < y])
    return g, nx.to_numpy_array(g), pairs  # weighted: link_indices binarises


def test_names_and_shapes(karate):
    _, a, pairs = karate
    out = link_indices(a, pairs)
    assert tuple(out) == INDEX_NAMES and len(INDEX_NAMES) == 14
    for v in out.values():
        assert v.dtype == np.float64 and v.shape == (len(pairs),) and np.isfinite(v).all()


@pytest.mark.parametrize(
    "name, reference",
    [
        ("adamic_adar", nx.adamic_adar_index),
        ("jaccard", nx.jaccard_coefficient),
        ("resource_allocation", nx.resource_allocation_index),
        ("preferential_attachment", nx.preferential_attachment),
    ],
)
@pytest.mark.parametrize("graph", ["karate", "hand"])
def test_matches_networkx(karate, graph, name, reference):
    if graph == "karate":
        g, a, pairs = karate
    else:
        g, a, pairs = nx.Graph(HAND_EDGES), adjacency(HAND_EDGES, 5), HAND_PAIRS
    expected = [s for _, _, s in reference(g, [tuple(p) for p in pairs.tolist()])]
    np.testing.assert_allclose(link_indices(a, pairs)[name], expected, rtol=1e-12)


def test_common_neighbours_match_networkx(karate):
    g, a, pairs = karate
    expected = [len(list(nx.common_neighbors(g, x, y))) for x, y in pairs.tolist()]
    np.testing.assert_array_equal(link_indices(a, pairs)["common_neighbours"], expected)


def test_katz_is_the_truncated_path_sum(karate):
    _, a, pairs = karate
    b = (a > 0).astype(float)
    beta, total, power = 0.05, np.zeros_like(b), np.eye(len(b))  # beta * lambda_max ~ 0.34
    for length in range(1, 80):
        power = power @ b
        total += beta**length * power
    out = link_indices(a, pairs, katz_beta=beta)["katz"]
    np.testing.assert_allclose(out, total[pairs[:, 0], pairs[:, 1]], rtol=1e-10)


def test_local_path_is_a2_plus_eps_a3(karate):
    _, a, pairs = karate
    b = (a > 0).astype(float)
    lp = b @ b + 0.1 * b @ b @ b
    out = link_indices(a, pairs, lp_epsilon=0.1)["local_path"]
    np.testing.assert_allclose(out, lp[pairs[:, 0], pairs[:, 1]], rtol=1e-12)


def test_rwr_is_the_steady_state_of_the_restart_walk(karate):
    _, a, pairs = karate
    b = (a > 0).astype(float)
    walk = b / b.sum(1, keepdims=True)
    restart, q = 0.3, np.eye(len(b))  # column x: the walk restarting at x
    for _ in range(300):
        q = restart * np.eye(len(b)) + (1 - restart) * walk.T @ q
    x, y = pairs[:, 0], pairs[:, 1]
    out = link_indices(a, pairs, rwr_restart=restart)["rwr"]
    np.testing.assert_allclose(out, q[y, x] + q[x, y], rtol=1e-10)


def test_hand_values():
    # k = (2, 3, 3, 3, 1); Γ0 = {1,2}, Γ1 = {0,2,3}, Γ2 = {0,1,3}, Γ3 = {1,2,4}, Γ4 = {3}
    # (0,3): ∩ {1,2}, ∪ {1,2,4}; salton 2/√6, HPI 2/2, HDI 2/3, sørensen 4/5, LHN 2/6
    # (1,2): ∩ {0,3}, ∪ {0,1,2,3}; salton 2/3, HPI 2/3, HDI 2/3, sørensen 4/6, LHN 2/9
    # (0,4): ∩ {}, ∪ {1,2,3}: all ratios 0
    # (1,4): ∩ {3}, ∪ {0,2,3}; salton 1/√3, HPI 1/1, HDI 1/3, sørensen 2/4, LHN 1/3
    expected = {
        "neighbours": [3, 4, 3, 3],
        "common_neighbours": [2, 2, 0, 1],
        "salton": [0.8164965809277260, 0.6666666666666666, 0, 0.5773502691896258],
        "jaccard": [0.6666666666666666, 0.5, 0, 0.3333333333333333],
        "hub_promoted": [1, 0.6666666666666666, 0, 1],
        "hub_depressed": [0.6666666666666666, 0.6666666666666666, 0, 0.3333333333333333],
        "sorensen": [0.8, 0.6666666666666666, 0, 0.5],
        "lhn": [0.3333333333333333, 0.2222222222222222, 0, 0.3333333333333333],
        "preferential_attachment": [6, 9, 2, 3],
        # common neighbours' degrees: (0,3) 3 and 3; (1,2) 2 and 3; (1,4) 3
        "adamic_adar": [1.8204784532536746, 2.3529342675158007, 0, 0.9102392266268373],
        "resource_allocation": [0.6666666666666666, 0.8333333333333334, 0, 0.3333333333333333],
    }
    out = link_indices(adjacency(HAND_EDGES, 5), HAND_PAIRS)
    for name, values in expected.items():
        np.testing.assert_allclose(out[name], values, rtol=1e-12, atol=1e-15, err_msg=name)


def test_symmetric_in_the_pair(karate):
    _, a, pairs = karate
    forward, backward = link_indices(a, pairs), link_indices(a, pairs[:, ::-1])
    for name in INDEX_NAMES:
        np.testing.assert_allclose(forward[name], backward[name], rtol=1e-12, err_msg=name)


def test_isolated_nodes_give_zeros():
    a = adjacency(HAND_EDGES, 7)  # nodes 5 and 6 are isolated
    pairs = np.array([(5, 6), (5, 0), (0, 5), (4, 6), (6, 6)])
    out = link_indices(a, pairs)
    for name in INDEX_NAMES:
        assert np.isfinite(out[name]).all(), name
        if name == "neighbours":
            np.testing.assert_array_equal(out[name], [0, 2, 2, 1, 0])
        elif name == "rwr":  # a walk from an isolated node stays there: only (6, 6) has mass
            np.testing.assert_allclose(out[name], [0, 0, 0, 0, 2 * 0.15])
        else:
            np.testing.assert_array_equal(out[name], 0, err_msg=name)


def test_weights_and_diagonal_are_ignored():
    a = adjacency(HAND_EDGES, 5)
    weighted = a * np.arange(1, 26).reshape(5, 5)
    weighted = weighted + weighted.T + np.diag([3.0, 0, 1, 0, 2])
    plain, heavy = link_indices(a, HAND_PAIRS), link_indices(weighted, HAND_PAIRS)
    for name in INDEX_NAMES:
        np.testing.assert_array_equal(plain[name], heavy[name], err_msg=name)


@pytest.mark.parametrize(
    "adj, pairs, kwargs, message",
    [
        (np.zeros((3, 4)), [(0, 1)], {}, "square"),
        (np.triu(np.ones((3, 3))), [(0, 1)], {}, "symmetric"),
        (np.full((3, 3), np.nan), [(0, 1)], {}, "NaN"),
        (np.ones((3, 3)), [(0, 1, 2)], {}, r"\(m, 2\)"),
        (np.ones((3, 3)), [0, 1], {}, r"\(m, 2\)"),
        (np.ones((3, 3)), [(0, 3)], {}, "out of range"),
        (np.ones((3, 3)), [(-1, 0)], {}, "out of range"),
        (np.ones((3, 3)), [(0.0, 1.0)], {}, "integer"),
        (np.ones((3, 3)), [(0, 1)], {"katz_beta": 0.0}, "katz_beta"),
        # triangle: λ_max = 2, so β must stay below 0.5
        (np.ones((3, 3)), [(0, 1)], {"katz_beta": 0.5}, r"katz_beta=0.5.*0\.5.*λ_max = 2"),
        (np.ones((3, 3)), [(0, 1)], {"katz_beta": 0.7}, "katz_beta"),
        (np.ones((3, 3)), [(0, 1)], {"rwr_restart": 0.0}, "rwr_restart"),
        (np.ones((3, 3)), [(0, 1)], {"rwr_restart": 1.0}, "rwr_restart"),
    ],
)
def test_bad_input(adj, pairs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        link_indices(adj, np.array(pairs), **kwargs)


def test_walks_follow_the_p_q_bias():
    # after stepping 0 -> 1, node 1's neighbours weigh 1/p (back to 0), 1 (node 2, a neighbour
    # of 0) and 1/q (node 3, two steps from 0): with p=2, q=0.5 that is 0.5 : 1 : 2
    a = adjacency([(0, 1), (0, 2), (1, 2), (1, 3)], 4)
    walks = _walks(a, 20000, 3, 2.0, 0.5, np.random.default_rng(0))
    third = walks[(walks[:, 0] == 0) & (walks[:, 1] == 1), 2]
    freq = np.bincount(third, minlength=4)[[0, 2, 3]] / len(third)
    np.testing.assert_allclose(freq, np.array([0.5, 1, 2]) / 3.5, atol=0.02)


def two_communities(size=10):
    a = np.zeros((2 * size, 2 * size))
    a[:size, :size] = a[size:, size:] = 1.0
    np.fill_diagonal(a, 0.0)
    a[size - 1, size] = a[size, size - 1] = 1.0  # one bridge
    return a


def test_node2vec_is_deterministic_per_seed():
    a = two_communities()
    first, second = node2vec(a, seed=3), node2vec(a, seed=3)
    assert first.shape == (20, 16) and first.dtype == np.float64
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, node2vec(a, seed=4))


def test_node2vec_separates_communities():
    e = node2vec(two_communities(), dim=8)
    z = e / np.linalg.norm(e, axis=1, keepdims=True)
    cos = z @ z.T
    group = np.repeat([0, 1], 10)
    same = (group[:, None] == group[None]) & ~np.eye(20, dtype=bool)
    across = group[:, None] != group[None]
    assert cos[same].mean() > cos[across].mean() + 0.3


def test_node2vec_isolated_nodes_are_zero():
    a = np.zeros((22, 22))
    a[:20, :20] = two_communities()
    e = node2vec(a, dim=4)
    np.testing.assert_array_equal(e[20:], 0.0)
    assert (np.linalg.norm(e[:20], axis=1) > 0).all()
    assert not node2vec(np.zeros((3, 3)), dim=4).any()


def test_interactions_hand_values():
    e = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    out = interactions(e, np.array([(0, 1), (0, 2), (2, 3), (2, 2)]), "n2v")
    assert list(out) == ["n2v_cosine", "n2v_hadamard_sum", "n2v_l2", "n2v_l1"]
    np.testing.assert_allclose(out["n2v_cosine"], [0, 0.6, 0, 1])  # 3 / (1 * 5); zero vector: 0
    np.testing.assert_allclose(out["n2v_hadamard_sum"], [0, 3, 0, 25])
    np.testing.assert_allclose(out["n2v_l2"], [np.sqrt(5), np.sqrt(20), 5, 0])
    np.testing.assert_allclose(out["n2v_l1"], [3, 6, 7, 0])
