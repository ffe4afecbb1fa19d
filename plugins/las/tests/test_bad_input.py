"""Bad input to ER-LAS / MIR-LAS: Config values (ValidationError naming the field), observing
before setup, labels outside num_classes, empty batches, task mode without task ids."""

import pytest
import torch
from pydantic import ValidationError

from yw_core.interfaces import StreamBatch
from yw_core.testing import tiny_classifier
from yw_plugin_las import ERLAS, MIRLAS, LogitAdjuster


def _setup(learner, runtime, classes=4):
    model = tiny_classifier(num_classes=classes)
    learner.setup(
        model, torch.optim.SGD(model.parameters(), lr=0.1), num_classes=classes, runtime=runtime
    )


@pytest.mark.parametrize(
    "overrides",
    [{"tau": -1}, {"window": 0}, {"eps": -1e-3}, {"buffer_size": 0}, {"minibatch_size": 0}],
)
@pytest.mark.parametrize("cls", [ERLAS, MIRLAS])
def test_bad_config_values_name_the_field(cls, overrides):
    with pytest.raises(ValidationError, match=next(iter(overrides))):
        cls(**overrides)


@pytest.mark.parametrize(
    "overrides", [{"mir_candidates": 0}, {"lr": 0}, {"buffer_update": "epoch"}]
)
def test_bad_mir_config_values_name_the_field(overrides):
    with pytest.raises(ValidationError, match=next(iter(overrides))):
        MIRLAS(**overrides)
    with pytest.raises(ValidationError, match=next(iter(overrides))):
        ERLAS(**overrides)  # ER-LAS has no such field


@pytest.mark.parametrize("cls", [ERLAS, MIRLAS])
def test_observe_or_predict_before_setup_says_call_setup_first(cls):
    batch = StreamBatch(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match=r"call setup\(.*\) first"):
        cls().observe(batch)
    with pytest.raises(RuntimeError, match=r"call setup\(.*\) first"):
        cls().predict(batch.x)


@pytest.mark.parametrize("cls", [ERLAS, MIRLAS])
def test_labels_outside_num_classes_are_named(cls, runtime):
    learner = cls()
    _setup(learner, runtime)
    batch = StreamBatch(torch.rand(4, 1, 8, 8), torch.tensor([0, 4, 7, 4]))
    with pytest.raises(ValueError, match=r"labels 4, 7 are outside the 4 classes \(0\.\.3\)"):
        learner.observe(batch)
    assert len(learner.buffer) == 0 and len(learner.adjuster) == 0  # nothing was learned


def test_an_empty_batch_cannot_be_built():
    with pytest.raises(ValueError, match="B >= 1"):
        StreamBatch(torch.rand(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))


def test_the_adjuster_names_bad_labels_and_an_empty_window():
    adjuster = LogitAdjuster(3)
    with pytest.raises(RuntimeError, match="call update"):
        adjuster.adjust(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="labels 3, 5 are outside the 3 classes"):
        adjuster.update(torch.tensor([0, 3, 5]))
    adjuster.update(torch.tensor([0]))
    with pytest.raises(ValueError, match="logits have 4 classes"):
        adjuster.adjust(torch.zeros(1, 4))


def test_mir_las_task_mode_needs_task_ids(runtime):
    learner = MIRLAS(buffer_update="task")
    _setup(learner, runtime)
    with pytest.raises(ValueError, match="needs batches with task ids"):
        learner.observe(StreamBatch(torch.rand(2, 1, 8, 8), torch.tensor([0, 1])))
