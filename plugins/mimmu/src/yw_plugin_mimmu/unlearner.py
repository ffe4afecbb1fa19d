"""MiMMU: erase a concept c from a conditional diffusion model by driving the mutual information
I(c; x) = E_c KL(p(x|c) ‖ p(x)) to zero (Cheng, Zhang, Huang, Wu, Huang; arXiv 2603.00992).

No code or method section of the paper could be read; the objective is reconstructed [I] from
the abstract and third-party notes (spec §2.2): the I-MMSE identity writes I as a weighted gap
E w_t ‖ε(x_t, t, c) − ε(x_t, t, ∅)‖², and the method aligns the unlearned conditional branch with
the pre-trained model's unconditional one, stop-gradient, on forget images noised forward (the
"Jacobian omission": no gradient through how x_t was sampled):

    L(θ) = E_{x0 ∈ D_f, t, ε} w_t ‖ε_θ(x_t, t, c) − sg[ε_φ(x_t, t, ∅)]‖²

Only the cross-attention (the parameters that read the condition) is trained, so the
unconditional branch, which classifier-free guidance uses for every prompt, stays where it was:
the paper's "maintaining the sampling distribution for other concepts" with no compensation.
"""

from __future__ import annotations

from yw_core.erasure import ConceptErasure
from yw_core.interfaces import Paper


class MiMMU(ConceptErasure):
    """Aligns the forgotten concept's noise prediction with the frozen unconditional one;
    no retain data, no preservation term."""

    name = "mimmu"
    summary = (
        "MiM-MU: compensation-free concept erasure in diffusion models, minimising the mutual "
        "information between concept and image (conditional ε aligned to the frozen ε(∅))"
    )
    paper = Paper(
        title="Compensation-free Unlearning in T2I Diffusion by Eliminating Mutual Information",
        authors=("Cheng", "Zhang", "Huang", "Wu", "Huang"),
        year=2026,
        venue="arXiv",
        arxiv_id="2603.00992",
    )
    status = "experimental"

    class Config(ConceptErasure.Config):
        pass

    def target(self, frozen, x_t, t, cond):
        return frozen.eps(x_t, t, frozen.null_condition(x_t.shape[0]))
