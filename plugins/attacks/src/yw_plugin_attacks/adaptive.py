"""The AAA paper's adaptive Square variants (spec §7): Square with the up or bi acceptance rule.

AAA reverses the margin's local trend inside attractor bins, so plain Square (keep a strictly lower
margin) is led away from the decision boundary. up-Square climbs the fake trend (keep a higher
margin, or a drop of more than `threshold`: a jump across an attractor); bi-Square starts as plain
Square and switches a sample to the up rule after the first query whose margin rose by more than
`threshold`. They are Square with another default, under their own names, so a benchmark can run
them beside plain Square.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from yw_core.interfaces import Paper
from yw_plugin_attacks.square import Square

AAA_PAPER = Paper(
    title="Adversarial Attack on Attackers: Post-Process to Mitigate Black-Box Score-Based Query "
    "Attacks",
    authors=("Chen", "Huang", "Tao", "Wu", "Xie", "Huang"),
    year=2022,
    venue="NeurIPS",
    arxiv_id="2205.12134",
    code_url="https://github.com/Sizhe-Chen/AAA",
)


class UpSquare(Square):
    """Square that climbs AAA's reversed margin trend (the paper's adaptive attack)."""

    name = "up-square"
    summary = "up-Square: Square accepting a higher margin or a jump across an attractor (adaptive)"
    paper = AAA_PAPER

    class Config(Square.Config):
        acceptance: Literal["down", "up", "bi"] = Field(
            "up", description="up: keep m > m_best or m - m_best < -threshold (spec §7)"
        )


class BiSquare(Square):
    """Square that switches to the up rule after a margin jump (the paper's adaptive attack)."""

    name = "bi-square"
    summary = "bi-Square: plain Square until a margin jump > threshold, then up-Square (adaptive)"
    paper = AAA_PAPER

    class Config(Square.Config):
        acceptance: Literal["down", "up", "bi"] = Field(
            "bi", description="bi: start down, switch to up after a rise > threshold (spec §7)"
        )
