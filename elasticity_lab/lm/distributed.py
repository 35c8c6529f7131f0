"""Training on several ranks: one fine-tuning run spread over the processes of ``accelerate launch``.

What the SFT loop (:func:`elasticity_lab.lm.training.sft`) needs from a launcher, and nothing else:

- :func:`data_parallel` wraps the model and optimiser through accelerate's ``Accelerator``, which reads the launch
  config: DDP (each rank a full copy, gradients all-reduced) or FSDP (parameters, gradients and optimiser state
  sharded over the ranks, for models that do not fit one card; ``elasticity_lab/assets/accelerate/``).
- :meth:`DataParallel.share` gives each rank its part of the global batch (the loop draws the same batches on every
  rank, from the same seed, and each rank keeps every ``world``-th example).
- :meth:`DataParallel.loss` makes the gradient the one of the whole batch: each rank's sum of token losses is divided
  by the token count of the *whole* batch (one all-reduce), so the averaged gradients equal a single process's,
  and the recorded loss is the whole batch's mean. Two processes therefore train the same model as one, up to the
  order of floating-point sums (the test holds them to a tolerance).
- :meth:`DataParallel.unwrap` gives back the plain model (for evaluation, copies, the next stage);
  :meth:`DataParallel.close` drops the accelerator's references, so a study of hundreds of runs holds none of them.

Without a launcher :func:`data_parallel` returns a pass-through whose every method does what the single-process loop
always did (same operations, same numbers, same cache entries): accelerate is not even imported.

Mixed precision stays the library's own (:mod:`elasticity_lab.lm.precision`: bf16, or fp16 with loss scaling): the
shipped launch configs say ``mixed_precision: "no"`` so that accelerate adds none of its own. With FSDP use bf16
(fp16's loss scaler is not the sharded one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from elasticity_lab.core import ranks
from elasticity_lab.lm.batching import IGNORE_INDEX

_ACCELERATOR: list[Any] = []


def accelerator() -> Any:
    """The process's one ``Accelerator`` (created on first use, from the launch config); ``None`` without a launcher."""
    if not ranks.distributed():
        return None
    if not _ACCELERATOR:
        from accelerate import Accelerator

        _ACCELERATOR.append(Accelerator())
    return _ACCELERATOR[0]


@dataclass
class DataParallel:
    """One run's model and optimiser, prepared for the ranks (or passed through): see the module's docstring."""

    model: Any
    optimizer: Any
    world: int = 1
    rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def share(self, idx: list[int]) -> tuple[list[int], float]:
        """This rank's examples of a global batch ``idx`` and their weight: every ``world``-th from ``rank``. A rank left
        without any (a last batch smaller than the world) runs the first example at weight 0, because every rank must
        take part in the gradient all-reduce."""
        if not self.active:
            return idx, 1.0
        mine = idx[self.rank::self.world]
        return (mine, 1.0) if mine else (idx[:1], 0.0)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, weight: float = 1.0) -> tuple[torch.Tensor, float]:
        """On ranks: the loss to back-propagate and the whole batch's mean loss (nats a response token).

        This rank's summed token losses × world / the whole batch's token count (one all-reduce), so that the
        averaged gradients are the gradient of the whole batch's mean. Alone, the loop uses its own mean loss."""
        if not self.active:
            raise RuntimeError("DataParallel.loss is for several ranks; a lone process takes the batch's mean loss itself.")
        target = labels[:, 1:].reshape(-1)
        total = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), target,
                                                  ignore_index=IGNORE_INDEX, reduction="sum") * weight
        both = torch.stack([(target != IGNORE_INDEX).sum().float() * weight, total.detach()])
        torch.distributed.all_reduce(both)
        count = float(both[0].clamp_min(1.0))
        return total * (self.world / count), float(both[1]) / count

    def backward(self, loss: torch.Tensor) -> None:
        if self.active:
            accelerator().backward(loss)
        else:
            loss.backward()

    def clip(self, max_norm: float) -> None:
        """Clip the gradients of the trainable parameters to ``max_norm`` (over every shard under FSDP)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.active:
            accelerator().clip_grad_norm_(params, max_norm)
        else:
            torch.nn.utils.clip_grad_norm_(params, max_norm)

    def unwrap(self) -> Any:
        """The plain model (the same parameters the wrapper trains)."""
        return accelerator().unwrap_model(self.model) if self.active else self.model

    def close(self) -> Any:
        """The plain model, with the accelerator's references to this run's model and optimiser dropped."""
        model = self.unwrap()
        if self.active:
            acc = accelerator()
            acc._models = [m for m in acc._models if m is not self.model]  # what free_memory() does, for this run alone
            acc._optimizers = [o for o in acc._optimizers if o is not self.optimizer]
            self.model = self.optimizer = None
        return model


def data_parallel(model: Any, optimizer: Any) -> DataParallel:
    """``model`` and ``optimizer`` prepared for the launcher's ranks (DDP or FSDP, as launched), or passed through alone."""
    acc = accelerator()
    if acc is None:
        return DataParallel(model, optimizer)
    wrapped, opt = acc.prepare(model, optimizer)
    return DataParallel(wrapped, opt, world=ranks.world_size(), rank=ranks.rank())
