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


class ChannelWindow(torch.nn.Module):
    """A network that reads only input channels [start, stop): a 2D member that sees fewer
    neighbouring slices than the ensemble's 2.5D input carries takes its centre slices."""

    def __init__(self, net: torch.nn.Module, start: int, stop: int):
        super().__init__()
        self.net, self.start, self.stop = net, start, stop
        self.out_channels = int(getattr(net, "out_channels", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, self.start : self.stop])


class MeanProbabilityEnsemble(torch.nn.ModuleList):
    """Member networks with the same outputs; forward: logit of the mean probability.

    ``windows``: per member, the input channels (start, stop) it reads, or None for all of them
    (``registry.ModelSpec.channel_window``); the members' own keys stay "<index>.<parameter>"."""

    def __init__(self, members, windows=None):
        super().__init__(members)
        self.windows = list(windows) if windows is not None else [None] * len(self)
        self.out_channels = int(getattr(self[0], "out_channels", 1))

    def member(self, index: int) -> torch.nn.Module:
        """Member ``index`` as a network of the ensemble's input."""
        window = self.windows[index]
        return self[index] if window is None else ChannelWindow(self[index], *window)

    def _members(self):
        return (self.member(i) for i in range(len(self)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prob = None
        for net in self._members():  # one member at a time: memory stays that of one network's activations
            p = torch.sigmoid(net(x).float())
            prob = p if prob is None else prob + p
        return torch.logit(prob / len(self), eps=LOGIT_EPS)

    def member_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(M, N, K, ...) each member's sigmoid probabilities (for member disagreement)."""
        return torch.stack([torch.sigmoid(net(x).float()) for net in self._members()])
