"""DIO.protect on digits-sized problems: spec §9 (g) and what the returned model promises."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from yw_core.runtime import Runtime
from yw_plugin_dio import DIO, DIOLoss, DIONet, OrthoHeads

FAST = {"num_paths": 5, "batch_size": 64, "eps": 0.1, "step_ratio": 0.25, "progress": False}


def runtime(seed: int = 0) -> Runtime:
    return Runtime(device="cpu", seed=seed, distributed=False)


def subset(data: TensorDataset, n: int) -> TensorDataset:
    return TensorDataset(*(t[:n] for t in data.tensors))


def mean_abs_cos(heads: OrthoHeads) -> float:
    cos = heads.pairwise_cosine()
    return float(cos[torch.triu_indices(*cos.shape, 1).unbind()].mean())


def test_ortho_loss_and_path_cosines_fall_under_training_and_rise_without_l_o(mlp, digits):
    # protect draws the paths from runtime.generator(device="cpu"): seed 0 gives these
    start = OrthoHeads(32, 10, 5, generator=torch.Generator().manual_seed(0))
    start_ortho, start_cos = start.ortho_loss().item(), mean_abs_cos(start)

    with_l_o = DIO(base="ce", epochs=2, **FAST).protect(mlp(), data=digits, runtime=runtime())
    assert with_l_o.heads.ortho_loss().item() < 0.5 * start_ortho
    assert mean_abs_cos(with_l_o.heads) < 0.5 * start_cos

    # the control: the same run with alpha = 0 makes the paths agree, so it is L_o that works
    without = DIO(base="ce", epochs=2, alpha=0.0, **FAST).protect(
        mlp(), data=digits, runtime=runtime()
    )
    assert without.heads.ortho_loss().item() > 2 * start_ortho
    assert mean_abs_cos(without.heads) > 2 * start_cos


def test_at_protect_trains_and_returns_a_random_path_model(mlp, digits):
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dio = DIO(base="at", epochs=2, **FAST)
    net = dio.protect(model, data=digits, runtime=runtime())
    assert isinstance(net, DIONet) and not net.training and net.mode == "random"
    x = digits.tensors[0][:16]
    with torch.no_grad():
        out = net(x)
    assert out.shape == (16, 10) and torch.isfinite(out).all()
    assert [row["epoch"] for row in dio.history] == [1, 2]
    assert dio.history[1]["train_loss"] < dio.history[0]["train_loss"]
    for row in dio.history:
        assert {"ortho_loss", "margin_loss", "mean_abs_cos"} <= row.keys()
        assert "val_pgd_acc" not in row  # val_fraction is 0 by default
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"protect changed the caller's model at {k}"


def test_ce_protect_learns_the_task(mlp, digits):
    from yw_core.data import load_dataset

    test = load_dataset("digits", "test")
    net = DIO(base="ce", epochs=2, **FAST).protect(mlp(), data=digits, runtime=runtime())
    with torch.no_grad():
        accuracy = (net(test.tensors[0]).argmax(1) == test.tensors[1]).float().mean().item()
    assert accuracy > 0.3  # chance is 0.1; 2 epochs on the MLP give 0.42


def test_same_seed_same_model_and_same_inference_paths(mlp, digits):
    data = subset(digits, 256)
    first = DIO(base="at", epochs=1, **FAST).protect(mlp(), data=data, runtime=runtime(0))
    second = DIO(base="at", epochs=1, **FAST).protect(mlp(), data=data, runtime=runtime(0))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    x = data.tensors[0][:8]
    sequences = []
    for net in (first, second):
        with torch.no_grad():
            sequences.append([(net(x), net.last_path)[1] for _ in range(20)])
    assert sequences[0] == sequences[1]
    assert len(set(sequences[0])) > 1


def test_validation_holds_out_data_and_reports_clean_and_pgd_accuracy(mlp, digits):
    data = subset(digits, 320)
    dio = DIO(base="at", epochs=2, val_fraction=0.2, val_pgd_steps=5, **FAST)
    dio.protect(mlp(), data=data, runtime=runtime())
    assert [row["updates"] for row in dio.history] == [4, 8]  # 256 training samples, batch 64
    for row in dio.history:
        assert 0 <= row["val_clean_acc"] <= 1 and 0 <= row["val_pgd_acc"] <= 1


def test_trades_protect_trains(mlp, digits):
    dio = DIO(base="trades", epochs=1, **FAST)
    net = dio.protect(mlp(), data=subset(digits, 256), runtime=runtime())
    assert torch.isfinite(torch.tensor(dio.history[0]["train_loss"]))
    with torch.no_grad():
        assert net(digits.tensors[0][:4]).shape == (4, 10)


def loss_of(base: str, net: DIONet, batch, **overrides) -> float:
    kw = dict(alpha=0.1, beta=0.1, tau=0.2, eps=0.1, step=0.025, steps=10, trades_beta=6.0)
    kw.update(overrides)
    loss_fn = DIOLoss(base=base, generator=torch.Generator().manual_seed(0), **kw)
    with torch.no_grad():
        return loss_fn(net, batch).item()


def trained_net(mlp, digits) -> DIONet:
    return DIO(base="ce", epochs=2, **FAST).protect(mlp(), data=digits, runtime=runtime())


def test_the_at_batch_is_adversarial(mlp, digits):
    net = trained_net(mlp, digits)
    batch = digits.tensors[0][:128], digits.tensors[1][:128]
    clean = loss_of("ce", net, batch, alpha=0.0, beta=0.0)
    assert loss_of("at", net, batch, alpha=0.0, beta=0.0) > clean + 0.1


def test_trades_without_its_kl_and_margin_terms_is_clean_training(mlp, digits):
    net = trained_net(mlp, digits).train()
    batch = digits.tensors[0][:128], digits.tensors[1][:128]
    clean = loss_of("ce", net, batch, beta=0.0)
    assert loss_of("trades", net, batch, beta=0.0, trades_beta=0.0) == pytest.approx(clean)
    assert loss_of("trades", net, batch, beta=0.0) > clean  # the KL term is positive
