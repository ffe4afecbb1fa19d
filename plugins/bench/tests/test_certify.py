"""`yw-core bench certify` end to end on a tiny budget: rows, files, bad input."""

import json

import pytest

from yw_bench.certify import RADII, CertifyBench, CertifyBenchConfig
from yw_core.bench import run_protocol
from yw_core.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("yw_plugin_some")
    out = tmp_path_factory.mktemp("cbench")
    config = CertifyBenchConfig(epochs=1, heads=2, n0=10, n=100, every=45, batch_size=100)
    return run_protocol(CertifyBench, config, out, progress=False), out


def test_rows_files_and_metrics(report):
    report, out = report
    assert list(report["results"]) == ["single", "some", "ensemble"]
    for name in ("results.json", "results.txt", "certified_accuracy.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    for r in saved["results"].values():
        accs = [r["certified_accuracy"][str(radius)] for radius in RADII]
        assert accs == sorted(accs, reverse=True)  # certified accuracy falls with the radius
        assert r["acr"] >= 0 and r["samples_per_second"] > 0 and len(r["radii"]) == 10
    assert saved["results"]["single"]["cost_vs_single"] == 1.0


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "certify", "--n0", "200", "--n", "100", "--out", str(out)]) == 2
    assert "n0 (200) must not exceed n (100)" in capsys.readouterr().err
    assert main(["bench", "certify", "--sigma", "-1", "--out", str(out)]) == 2
    assert not out.exists()
    # the rejection of a non-certified defense needs one installed; yw-plugin-aaa is optional
    pytest.importorskip("yw_plugin_aaa", reason="yw-plugin-aaa not installed")
    assert main(["bench", "certify", "--methods", "aaa", "--out", str(out)]) == 2
    assert "aaa: not certified-training defenses" in capsys.readouterr().err
    assert not out.exists()
