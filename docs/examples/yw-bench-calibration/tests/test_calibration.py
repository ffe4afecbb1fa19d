"""yw-core's protocol suite for CalibrationBench, and what its report says."""

from yw_core.bench import run_protocol
from yw_core.testing import protocol_suite

from yw_bench_calibration import CalibrationBench

TestConformance = protocol_suite(CalibrationBench, smoke={"n": 40, "sigmas": (0.0, 0.3)})


def test_noise_lowers_the_undefended_accuracy(tmp_path):
    bench = CalibrationBench()
    config = bench.config(methods=(), n=200, sigmas=(0.0, 0.5))
    report = run_protocol(bench, config, tmp_path, progress=False)
    none = report["results"]["none"]
    assert none["0.0"]["accuracy"] > 0.9
    assert none["0.5"]["accuracy"] < none["0.0"]["accuracy"]
    assert all(0 <= row["ece"] <= 1 for row in none.values())
    assert "sigma=0.5" in (tmp_path / "results.txt").read_text()
