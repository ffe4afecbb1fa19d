"""`yw-core bench calibration`: accuracy and ECE of each post-hoc defense under input noise."""

from typing import ClassVar

from pydantic import Field
from yw_core.bench import Protocol, ProtocolConfig, Report, columns, configure, pct, select


class CalibrationConfig(ProtocolConfig):
    """Settings of one run; every field is a flag of `yw-core bench calibration`."""

    methods: tuple[str, ...] | None = Field(None, description="defenses; None = every post-hoc one")
    sigmas: tuple[float, ...] = Field((0.0, 0.1, 0.3), description="std of the input noise")
    n: int = Field(300, ge=1, description="test points scored")
    calibration: int = Field(150, ge=0, description="held-out points given to the defenses")
    bins: int = Field(15, ge=2, description="confidence bins of the ECE")


class CalibrationBench(Protocol):
    """The undefended reference model and every post-hoc defense, on noisy test inputs."""

    name = "calibration"
    summary = "accuracy and ECE of post-hoc defenses as Gaussian input noise grows"
    Config = CalibrationConfig
    presets: ClassVar = {"wide": {"sigmas": (0.0, 0.05, 0.1, 0.2, 0.3, 0.5), "n": 450}}

    def run(self, config, *, runtime, progress):
        import torch
        from torch.utils.data import TensorDataset
        from yw_core import metrics
        from yw_core.data import load_dataset
        from yw_core.zoo import reference_model

        defenses = select(
            self,
            "defense",
            config.methods,
            where=lambda cls: cls.capabilities.post_hoc,
            why="not post-hoc",
            builtin=["none"],
        )
        model = runtime.to(reference_model("digits", seed=config.seed, runtime=runtime)).eval()
        x_all, y_all = load_dataset("digits", "test", seed=config.seed).tensors
        held_out = len(x_all) - config.calibration  # the last points calibrate, never scored
        n = min(config.n, held_out)
        x, y = runtime.to(x_all[:n]), runtime.to(y_all[:n])
        calibration = TensorDataset(x_all[held_out:], y_all[held_out:])
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(config.seed))
        results = {}
        for name in ["none", *defenses]:
            defended = model
            if name != "none":
                method = configure(defenses[name], {})
                defended = method.protect(model, data=calibration, runtime=runtime)
            rows = {}
            for sigma in config.sigmas:
                noisy = (x + sigma * runtime.to(noise)).clamp(0, 1)
                runtime.seed_everything()
                with torch.no_grad():
                    logits = defended(noisy)
                probs = logits.float().softmax(1)
                rows[str(sigma)] = {
                    "accuracy": metrics.accuracy(logits, y),
                    "ece": metrics.expected_calibration_error(probs, y, n_bins=config.bins),
                }
            results[name] = rows
            self.result(name, rows)
        return Report(results=results, manifest={"n": len(x), "arch": "digits-cnn"})

    def format_table(self, report):
        sigmas = [str(s) for s in report["config"]["sigmas"]]
        rows = [
            [name, metric] + [pct(r[s][metric]) for s in sigmas]
            for name, r in report["results"].items()
            for metric in ("accuracy", "ece")
        ]
        lines = columns(["method", "%"] + [f"sigma={s}" for s in sigmas], rows)
        return "\n".join([f"bench calibration: digits, n={report['manifest']['n']}", *lines]) + "\n"
