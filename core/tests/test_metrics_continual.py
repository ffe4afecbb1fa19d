"""yw_core.metrics continual-learning metrics: the spec's §13 vectors."""

import pytest

from yw_core.metrics import average_accuracy, backward_transfer, forgetting


def test_spec_vectors():
    r = [[90, 0, 0], [70, 85, 0], [60, 75, 80]]
    assert average_accuracy(r) == pytest.approx(71.6667, abs=1e-4)
    assert forgetting(r) == pytest.approx(20.0)
    assert backward_transfer(r) == pytest.approx(-20.0)
    r = [[50, 0], [70, 90]]
    assert forgetting(r) == pytest.approx(-20.0)  # Chaudhry: the max stops at row T-2
    assert forgetting(r, variant="mammoth") == pytest.approx(0.0)


def test_one_task_and_bad_matrices():
    assert forgetting([[80]]) == 0.0 and backward_transfer([[80]]) == 0.0
    with pytest.raises(ValueError, match="square"):
        average_accuracy([[1, 2, 3]])
    with pytest.raises(ValueError, match="variant"):
        forgetting([[1, 0], [1, 1]], variant="avalanche")


def test_a_tensor_of_any_float_dtype_with_grad_reads_like_the_list():
    import torch

    r = [[90.0, 0.0, 0.0], [70.0, 85.0, 0.0], [60.0, 75.0, 80.0]]
    for t in (torch.tensor(r, dtype=torch.bfloat16), torch.tensor(r, requires_grad=True)):
        assert forgetting(t) == pytest.approx(forgetting(r), abs=0.5)
        assert average_accuracy(t) == pytest.approx(average_accuracy(r), abs=0.5)
