"""The concept-erasure baselines MiM-MU compares against, on the loop it shares with them
(`yw_core.erasure.ConceptErasure`): same data, same trainable parameters, other targets.

- ESD (Gandikota et al., ICCV 2023, "Erasing Concepts from Diffusion Models"): negative guidance,
  ε_θ(x_t, c) → ε_φ(x_t, ∅) − η (ε_φ(x_t, c) − ε_φ(x_t, ∅)), η = 1. ESD-x trains the
  cross-attention as here; ESD samples x_t from the model itself, we noise the forget images
  forward like the other two.
- Concept ablation (Kumari et al., ICCV 2023, "Ablating Concepts in Text-to-Image Diffusion
  Models"): fine-tunes the concept onto another one, ε_θ(x_t, c) → ε_φ(x_t, c*) for an anchor
  concept c* (e.g. "cat" for "grumpy cat"); its cross-attention variant, model-based form.
"""

from __future__ import annotations

from pydantic import Field

from yw_core.erasure import ConceptErasure
from yw_core.interfaces import Paper


class ESD(ConceptErasure):
    """Negative guidance: the concept's prediction is pushed past ∅, away from c."""

    name = "esd"
    summary = (
        "ESD: erase a concept by fine-tuning it towards negative guidance ε(∅) − η(ε(c) − ε(∅))"
    )
    paper = Paper(
        title="Erasing Concepts from Diffusion Models",
        authors=("Gandikota", "Materzynska", "Fiotto-Kaufman", "Bau"),
        year=2023,
        venue="ICCV",
        arxiv_id="2303.07345",
        code_url="https://github.com/rohitgandikota/erasing",
    )
    status = "baseline"

    class Config(ConceptErasure.Config):
        eta: float = Field(1.0, ge=0, le=100, description="negative guidance scale η (ESD: 1)")

    def target(self, frozen, x_t, t, cond):
        e_null = frozen.eps(x_t, t, frozen.null_condition(x_t.shape[0]))
        e_c = frozen.eps(x_t, t, cond)
        return e_null - self.config.eta * (e_c - e_null)


class ConceptAblation(ConceptErasure):
    """Maps the concept onto an anchor concept: ε_θ(x_t, c) → ε_φ(x_t, c*)."""

    name = "ablation"
    summary = "Concept ablation: fine-tune a concept's prediction onto an anchor concept's"
    paper = Paper(
        title="Ablating Concepts in Text-to-Image Diffusion Models",
        authors=("Kumari", "Zhang", "Wang", "Shechtman", "Zhang", "Zhu"),
        year=2023,
        venue="ICCV",
        arxiv_id="2303.13516",
        code_url="https://github.com/nupurkmr9/concept-ablation",
    )
    status = "baseline"

    class Config(ConceptErasure.Config):
        anchor: int | str = Field(
            0,
            description="the anchor concept c*: a class index, or a prompt for a text-"
            "conditioned model (bench erase picks one; 0 is only a placeholder)",
        )

    def target(self, frozen, x_t, t, cond):
        anchor = [self.config.anchor] * x_t.shape[0]
        return frozen.eps(x_t, t, frozen.condition(anchor))

    def check_concepts(self, model, forget) -> None:
        super().check_concepts(model, forget)
        try:
            model.condition([self.config.anchor])
        except ValueError as e:
            raise ValueError(f"{self.name}: the anchor: {e}") from None
