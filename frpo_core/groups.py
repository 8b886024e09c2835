"""Prompt groups as a dense (groups × members) layout, built from explicit group ids.

FRPO's objective is a log-mean-exp *per prompt group* (docs/method.md §1, "per-prompt structure"). The authors find
groups by hashing prompt tokens over the gathered batch, which silently merges distinct prompts
(docs/method.md §2.4 item 1). Here every completion carries the id of the prompt it was sampled for, and this module
turns those ids, in any order and not necessarily contiguous, into a padded (G, n_max) layout so that every group
statistic is one vectorised tensor op instead of a Python loop over groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Padding for empty slots of the dense layout in log space. Finite on purpose: -inf padding gives NaN gradients
# through logsumexp when a whole row is padding, whereas exp(PAD - max) is exactly 0 in float32 and float64.
LOG_PAD = -1.0e30


@dataclass(frozen=True)
class GroupLayout:
    """Where each sample sits in a dense (num_groups, max_size) table of its prompt group.

    Attributes:
        group_index: (B,) index of each sample's group in 0..num_groups-1, ordered by sorted group id.
        position: (B,) slot of each sample inside its group's row.
        sizes: (num_groups,) number of samples in each group.
        valid: (num_groups, max_size) True where a slot holds a sample.
    """

    group_index: torch.Tensor
    position: torch.Tensor
    sizes: torch.Tensor
    valid: torch.Tensor

    @classmethod
    def from_ids(cls, group_ids: torch.Tensor) -> GroupLayout:
        """Build the layout from a (B,) tensor of integer group ids (any order, any values)."""
        if group_ids.dim() != 1:
            raise ValueError(f"group_ids must have shape (B,), got {tuple(group_ids.shape)}.")
        if group_ids.is_floating_point() or group_ids.is_complex():
            raise ValueError("group_ids must be an integer tensor (one prompt id per completion).")
        _, group_index, sizes = torch.unique(group_ids, return_inverse=True, return_counts=True)
        # Stable sort keeps the original order inside a group; a sample's slot is its rank among its group's members.
        order = torch.argsort(group_index, stable=True)
        starts = torch.cumsum(sizes, 0) - sizes
        rank_in_sorted = torch.arange(group_ids.numel(), device=group_ids.device) - starts[group_index[order]]
        position = torch.empty_like(group_index)
        position[order] = rank_in_sorted
        max_size = int(sizes.max()) if sizes.numel() else 0
        valid = torch.arange(max_size, device=group_ids.device).unsqueeze(0) < sizes.unsqueeze(1)
        return cls(group_index=group_index, position=position, sizes=sizes, valid=valid)

    @property
    def num_groups(self) -> int:
        return self.sizes.numel()

    def dense(self, values: torch.Tensor, fill: float) -> torch.Tensor:
        """Scatter per-sample (B,) values into the (G, n_max) table; empty slots hold `fill`. Differentiable."""
        table = values.new_full(self.valid.shape, fill)
        return table.index_put((self.group_index, self.position), values)

    def gather(self, table: torch.Tensor) -> torch.Tensor:
        """Read a (G, n_max) table back into per-sample (B,) order."""
        return table[self.group_index, self.position]

    def broadcast(self, per_group: torch.Tensor) -> torch.Tensor:
        """Give every sample its group's (G,) value, as a (B,) tensor."""
        return per_group[self.group_index]

    def group_mean(self, values: torch.Tensor) -> torch.Tensor:
        """(G,) mean of per-sample values within each group."""
        return self.dense(values, 0.0).sum(1) / self.sizes.to(values.dtype)

    def log_mean_exp(self, log_values: torch.Tensor) -> torch.Tensor:
        """(G,) log of the group mean of exp(log_values), stable for any spread of the inputs."""
        table = self.dense(log_values, LOG_PAD)
        return torch.logsumexp(table, dim=1) - self.sizes.to(log_values.dtype).log()

    def leave_one_out_log_mean_exp(self, log_values: torch.Tensor) -> torch.Tensor:
        """(B,) log of the mean of exp(log_values) over a sample's group *without that sample*.

        Computed as a logsumexp over the other members (a (G, n, n) table with the diagonal padded out), never as
        log(S - u_i): that subtraction cancels catastrophically when one sample dominates its group, which is the
        normal case for small λ. Needs every group to have at least two members.
        """
        table = self.dense(log_values, LOG_PAD)
        n_max = table.shape[1]
        others = table.unsqueeze(1).expand(-1, n_max, -1)
        eye = torch.eye(n_max, dtype=torch.bool, device=table.device)
        others = others.masked_fill(eye, LOG_PAD)
        loo = torch.logsumexp(others, dim=2) - (self.sizes - 1).clamp(min=1).to(log_values.dtype).log().unsqueeze(1)
        return self.gather(loo)
