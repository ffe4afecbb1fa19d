"""yw-core's protocol suite for each of yw-bench's protocols: the class rules, every Config field
a flag with help, presets that validate, and a cheap real run whose files are readable."""

from yw_bench.certify import CertifyBench
from yw_bench.continual import ContinualBench
from yw_bench.defense import DefenseBench
from yw_bench.erase import EraseBench
from yw_bench.ood import OODBench
from yw_bench.rec import RecBench
from yw_bench.robust_training import RobustTrainingBench
from yw_bench.unlearn import UnlearnBench
from yw_bench.weight_optimizer import WeightOptimizerBench
from yw_core.testing import protocol_suite

CPU = {"device": "cpu"}

TestDefenseBench = protocol_suite(
    DefenseBench, smoke={**CPU, "methods": (), "attacks": ("square",), "queries": (10,), "n": 20}
)
TestWeightOptimizerBench = protocol_suite(
    WeightOptimizerBench, smoke={**CPU, "methods": ("sgd",), "epochs": 1, "batch_size": 256}
)
TestRobustTrainingBench = protocol_suite(
    RobustTrainingBench, smoke={**CPU, "methods": (), "epochs": 1, "n": 10, "seeds": (0,)}
)
TestCertifyBench = protocol_suite(
    CertifyBench,
    smoke={**CPU, "methods": (), "epochs": 1, "heads": 2, "n0": 10, "n": 100, "every": 100},
)
TestOODBench = protocol_suite(
    OODBench, smoke={**CPU, "methods": (), "epochs": 1, "ood_sets": ("digits-5-9", "uniform")}
)
TestUnlearnBench = protocol_suite(
    UnlearnBench, smoke={**CPU, "methods": (), "seeds": (0,), "epochs": 1, "settings": ("class",)}
)
TestContinualBench = protocol_suite(
    ContinualBench, smoke={**CPU, "methods": (), "seeds": (0,), "settings": ("class-il",)}
)
TestRecBench = protocol_suite(
    RecBench,
    smoke={
        **CPU,
        "methods": (),
        "seeds": (0,),
        "requests": 20,
        "candidates": 5,
        "latency_candidates": (1, 3),
        "latency_repeats": 1,
    },
)
TestEraseBench = protocol_suite(
    EraseBench,
    smoke={
        **CPU,
        "methods": (),
        "seeds": (0,),
        "ddpm_steps": 50,
        "forget_samples": 4,
        "samples_per_class": 4,
        "grid": 1,
    },
)
