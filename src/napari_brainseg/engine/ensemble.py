"""Several trained networks used as one: the mean of their sigmoid probabilities.

The cross-validation folds of a model are shipped together (``ModelSpec.members``). Wrapped in
:class:`MeanProbabilityEnsemble` they look like a single network to the sliding window and the
slice batches (``window``), which apply a sigmoid to what a network returns; the ensemble therefore
returns the logit of its members' mean probability, so that sigmoid gives back exactly that mean
(up to float rounding), as the models issue asks (mean of probabilities, not of logits).
"""

from __future__ import annotations

import torch

# clamps the mean probability away from 0 and 1 before the logit; sigmoid(logit(p)) then differs from
# p by less than 1e-6, far below any threshold step the models use (0.1)
LOGIT_EPS = 1e-6


class MeanProbabilityEnsemble(torch.nn.ModuleList):
    """Member networks with the same inputs and outputs; forward: logit of the mean probability."""

    def __init__(self, members):
        super().__init__(members)
        self.out_channels = int(getattr(self[0], "out_channels", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prob = None
        for net in self:  # one member at a time: memory stays that of one network's activations
            p = torch.sigmoid(net(x).float())
            prob = p if prob is None else prob + p
        return torch.logit(prob / len(self), eps=LOGIT_EPS)

    def member_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(M, N, K, ...) each member's sigmoid probabilities (for member disagreement)."""
        return torch.stack([torch.sigmoid(net(x).float()) for net in self])
