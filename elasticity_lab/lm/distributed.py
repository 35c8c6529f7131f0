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
shipped launch configs say ``mixed_precision: "no"`` so that accelerate adds none of its own. Under FSDP fp16 is
refused (:func:`elasticity_lab.lm.precision.mixed_precision`): use bf16.

**FSDP is done here, with torch's ``fully_shard`` (FSDP2), not by accelerate.** accelerate 1.15 turns a launch config's
``distributed_type: FSDP`` into FSDP only where the process group is one of cards (``AcceleratorState.__init__`` in
``accelerate/state.py`` makes ``DistributedType.FSDP`` from ``MULTI_GPU``/``MULTI_NPU``/...; ``MULTI_CPU`` is not in
that list), so without CUDA its ``prepare`` wraps the model in plain DDP. torch's ``fully_shard`` itself runs over gloo
on the CPU. So when the launch asks for FSDP (``$ACCELERATE_USE_FSDP``), :func:`data_parallel` shards the model
itself, on cards as on the CPU (the tested path is the one that runs on GPUs), the way accelerate's FSDP2 does: one
unit per decoder layer named in ``$FSDP_TRANSFORMER_CLS_TO_WRAP`` (the classes a model does not have are skipped),
then the root. Each unit's parameters are made fp32 just before it is sharded (fp32 master weights and AdamW state
even where the base was loaded in bf16; one layer at a time, so the full fp32 model never exists on a card), and the
optimiser is pointed at the sharded parameters. :meth:`DataParallel.unwrap` gathers the shards into a *plain* model
on every rank, in the dtype the model came in (a θ checkpoint, the trained model of :meth:`DataParallel.close`), so
nothing downstream (generation, copies, the next stage) ever holds a sharded model, except the model being trained
in place (``sft(copy_model=False)``), which its callback may score: its forward passes and ``generate`` all-gather, so
every rank takes part in step (``generate`` is told ``synced_gpus``).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import torch

from elasticity_lab.core import ranks
from elasticity_lab.lm.batching import IGNORE_INDEX

_ACCELERATOR: list[Any] = []
WRAP_ENV_VAR = "FSDP_TRANSFORMER_CLS_TO_WRAP"
RESHARD_ENV_VAR = "FSDP_RESHARD_AFTER_FORWARD"


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
    skeleton: Any = None
    """Under FSDP: the model's plain twin on the ``meta`` device (no memory), into which :meth:`unwrap` gathers."""

    @property
    def sharded(self) -> bool:
        return self.skeleton is not None

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
        if self.sharded:
            loss.backward()  # fully_shard's hooks reduce-scatter the gradients
        elif self.active:
            accelerator().backward(loss)
        else:
            loss.backward()

    def clip(self, max_norm: float) -> None:
        """Clip the gradients of the trainable parameters to ``max_norm`` (over every shard under FSDP)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.sharded:
            torch.nn.utils.clip_grad_norm_(params, max_norm)  # DTensor gradients: the norm is over every shard
        elif self.active:
            accelerator().clip_grad_norm_(params, max_norm)
        else:
            torch.nn.utils.clip_grad_norm_(params, max_norm)

    def unwrap(self) -> Any:
        """The plain model: the same parameters the wrapper trains (DDP, alone), or under FSDP a plain copy gathered
        from the shards on every rank (a collective: every rank calls it at the same point)."""
        if self.sharded:
            return gathered(self.model, self.skeleton)
        return accelerator().unwrap_model(self.model) if self.active else self.model

    def snapshot(self) -> Any:
        """A plain copy of the model as it is now (a θ checkpoint), in eval mode."""
        return (self.unwrap() if self.sharded else copy.deepcopy(self.unwrap())).eval()

    def close(self) -> Any:
        """The plain model, with the accelerator's references to this run's model and optimiser dropped (under FSDP:
        the optimiser state and gradients are freed first, then the shards gathered into a plain model)."""
        if self.sharded:
            self.optimizer.state.clear()
            for p in self.model.parameters():
                p.grad = None
            model = self.unwrap()
            self.model = self.optimizer = self.skeleton = None
            return model
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
    if ranks.fsdp_launched():
        skeleton = meta_twin(model)
        shard(model)
        repoint(optimizer, skeleton, model)
        return DataParallel(model, optimizer, world=ranks.world_size(), rank=ranks.rank(), skeleton=skeleton)
    wrapped, opt = acc.prepare(model, optimizer)
    return DataParallel(wrapped, opt, world=ranks.world_size(), rank=ranks.rank())


# --------------------------------------------------------------------------- FSDP (torch's fully_shard)


def wrap_classes() -> tuple[str, ...]:
    """The decoder layer classes the launch config names as FSDP units (``fsdp_transformer_layer_cls_to_wrap``)."""
    return tuple(c.strip() for c in os.environ.get(WRAP_ENV_VAR, "").split(",") if c.strip())


def is_sharded(model: Any) -> bool:
    """Whether ``model`` is (or holds) a module sharded by ``fully_shard``."""
    if not ranks.distributed():
        return False
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def meta_twin(model: Any) -> Any:
    """A deep copy of ``model`` whose parameters and buffers are empty tensors on the ``meta`` device (same shapes,
    dtypes, ties and ``requires_grad``): the module tree without the memory."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo.setdefault(id(p), torch.nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad))
    for b in model.buffers():
        memo.setdefault(id(b), torch.empty_like(b, device="meta"))
    return copy.deepcopy(model, memo)


def shard(model: Any) -> Any:
    """Shard ``model`` in place over the ranks with ``fully_shard``: one unit per module of a :func:`wrap_classes`
    class, then the root; each unit's parameters made fp32 (master weights) just before it is sharded."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cuda" if torch.cuda.is_available() else "cpu", (ranks.world_size(),))
    reshard = os.environ.get(RESHARD_ENV_VAR, "true").strip().lower() != "false"
    names = set(wrap_classes())

    def fp32(module: Any) -> None:
        for p in module.parameters():
            if p.is_floating_point() and p.dtype != torch.float32:
                p.data = p.data.float()

    for module in [m for m in model.modules() if type(m).__name__ in names]:
        fp32(module)
        fully_shard(module, mesh=mesh, reshard_after_forward=reshard)
    fp32(model)
    fully_shard(model, mesh=mesh)
    return model


def repoint(optimizer: Any, skeleton: Any, model: Any) -> None:
    """Point a fresh ``optimizer`` (one group over the plain model's trainable parameters, as
    :func:`elasticity_lab.lm.training.make_optimizer` makes it) at ``model``'s sharded parameters, matched by name
    (``skeleton``, the meta twin made before sharding, keeps the plain parameters' names in the same order)."""
    if any(optimizer.state.values()):
        raise RuntimeError("the optimizer already has state; shard the model before the first step.")
    new = dict(model.named_parameters())
    trainable = [n for n, p in skeleton.named_parameters() if p.requires_grad]
    if len(optimizer.param_groups) != 1 or len(optimizer.param_groups[0]["params"]) != len(trainable):
        raise RuntimeError("sharding needs an optimizer with one group over the model's trainable parameters.")
    optimizer.param_groups[0]["params"] = [new[n] for n in trainable]


def gathered(model: Any, skeleton: Any) -> Any:
    """A plain copy of the sharded ``model`` on every rank (all ranks call it together): its full parameters, in the
    dtypes and on the device of the model before sharding, and its buffers.

    Gathered one tensor at a time, each cast to its plain dtype at once: the card holds the plain copy being built and
    one full fp32 tensor beside the shards, never the whole model in fp32 (a full fp32 state dict would be 4 bytes a
    parameter on every rank, 52 GB for a 13B model: the arithmetic of
    :func:`elasticity_lab.experiments.realmodels.fsdp_memory` counts the plain copy alone)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict
    from torch.distributed.tensor import DTensor

    sharded = get_model_state_dict(model)  # the shards (DTensors) under the plain model's names: nothing gathered yet
    plain = copy.deepcopy(skeleton)  # meta: nothing copied
    dtypes = {n: t.dtype for n, t in skeleton.state_dict(keep_vars=True).items()}
    state: dict[str, torch.Tensor] = {}
    for name, value in sharded.items():  # the same order on every rank: each full_tensor() is a collective
        full = value.full_tensor() if isinstance(value, DTensor) else value
        state[name] = full.detach().to(dtypes.get(name, full.dtype))
        del full
    del sharded
    plain.load_state_dict(state, strict=False, assign=True)
    for name, buf in model.named_buffers():  # not sharded by FSDP; non-persistent ones (rotary) are not in the state dict
        owner, _, leaf = name.rpartition(".")
        (plain.get_submodule(owner) if owner else plain)._buffers[leaf] = buf.detach().clone()
    if hasattr(plain, "tie_weights"):
        plain.tie_weights()
    still = [n for n, p in plain.named_parameters() if p.is_meta]
    if still:
        raise RuntimeError(f"gathering the sharded model left {len(still)} parameters unset (first: {still[0]}).")
    return plain.train(model.training)
