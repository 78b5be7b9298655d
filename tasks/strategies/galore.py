"""galore: every weight trained, with GaLore (gradient low-rank projection) through Trainer's `optim`:
the Adam moments of the large linear layers live in a rank-`rank` subspace, so the optimizer state
shrinks while the weights stay full rank. Compare `optimizer_state_mb` with `full` on the leaderboard.
"""

from __future__ import annotations

from pydantic import Field

from transferflow.strategy import Adaptation, GradientStrategy, StrategyOptions, Target, register


class GaloreOptions(StrategyOptions):
    rank: int = Field(32, gt=0)
    """Rank of the subspace the gradients of the target layers are projected onto."""
    update_proj_gap: int = Field(100, gt=0)
    """Optimizer steps between recomputations (SVD of the gradient) of the projection."""
    scale: float = Field(0.25, gt=0)
    """Scale of the projected-back update (GaLore's alpha)."""
    target_modules: list[str] | None = None
    """Linear layers (module-name suffixes) optimized in low rank; null: every attention and feed-forward
    projection of the encoder (the family's AdapterLayout.projections). The rest (embeddings, norms,
    head) get plain AdamW."""


def adapt(model, options: GaloreOptions, target: Target) -> Adaptation:
    """Every weight trains; the optimizer is Trainer's GaLore AdamW, by name."""
    return Adaptation(model, optimizer=dict(
        optim="galore_adamw", optim_target_modules=list(options.target_modules or target.family.layout.projections),
        optim_args=f"rank={options.rank},update_proj_gap={options.update_proj_gap},scale={options.scale}"))


register(GradientStrategy(name="galore", summary="pretrained encoder, all weights trained with the GaLore optimizer",
                          init="pretrained", Options=GaloreOptions, adapt=adapt))
