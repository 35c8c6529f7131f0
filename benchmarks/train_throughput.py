"""Training throughput: the library's pre-training loop against a bare PyTorch loop, per preset.

    python benchmarks/train_throughput.py                   # CPU presets nano … large
    python benchmarks/train_throughput.py --presets micro --steps 60 --threads 1 --rounds 5
    python benchmarks/train_throughput.py --device cuda --presets full --batch-size 128 --seq-len 128

For each preset, in one process: tokens/s of ``elasticity_lab.lm.pretraining.pretrain`` (with its data
generation, schedule, clipping, logging and a checkpoint write) and of a minimal loop (forward,
cross-entropy, backward, AdamW step) on the same model, batch shape and token stream, printed side by side
with their ratio (goal ≥ 0.9 on the CPU, ≥ 1.0 on CUDA; each loop's best of ``--rounds`` alternating rounds,
since a shared machine only slows rounds down); and the model's FLOP/s (6 × parameters × tokens/s) as a
fraction of a 1024×1024 matmul's FLOP/s measured in the same run (fp32 with the same threads on the CPU).

``--device`` (default: the library's one device choice, :func:`elasticity_lab.lm.presets.choose_device`) runs
both loops there. On CUDA the plain loop is the one worth beating: bf16 autocast, TF32 and fused AdamW, the
same precision the library uses; the matmul peak is then bf16 (4096×4096). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from elasticity_lab.lm.presets import CPU_PRESETS, autocast_for, choose_device, count_parameters, cpu_threads, random_model  # noqa: E402
from elasticity_lab.lm.pretraining import PretrainConfig, pretrain, token_batches  # noqa: E402
from elasticity_lab.lm.training import make_optimizer, next_token_loss  # noqa: E402
from elasticity_lab.microworld.world import World  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(threads: int, device: torch.device, seconds: float = 1.0) -> float:
    """FLOP/s of an n×n matmul (2n³ FLOPs each): fp32 1024² with ``threads`` threads on the CPU, bf16 4096² on CUDA."""
    n, dtype = (4096, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    with cpu_threads(threads):
        for _ in range(3):
            a @ b
        _sync(device)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            count += 1
            if count % 16 == 0:
                _sync(device)
        _sync(device)
        return 2 * n**3 * count / (time.perf_counter() - start)


def raw_loop(preset: str, world: World, config: PretrainConfig, steps: int, device: torch.device) -> float:
    """Tokens/s of the barest loop on the same model and data (batches generated and moved before timing):
    fp32 AdamW (foreach) on the CPU; bf16 autocast, TF32 and fused AdamW on CUDA."""
    model = random_model(preset, len(world.vocabulary), seed=config.seed, device=device)
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, **fast)
    batches = token_batches(world, config)
    data = [next(batches).to(device) for _ in range(steps + 3)]
    model.train()

    def step(x: torch.Tensor) -> None:
        with autocast_for(device):
            loss = next_token_loss(model(input_ids=x).logits, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with cpu_threads(config.threads):
        for x in data[:3]:
            step(x)
        _sync(device)
        start = time.perf_counter()
        for x in data[3:]:
            step(x)
        _sync(device)
        return steps * config.tokens_per_step / (time.perf_counter() - start)


def library_loop(preset: str, world: World, config: PretrainConfig, device: torch.device) -> float:
    """Tokens/s of ``pretrain`` itself, in a throw-away cache (the run's own per-step clock)."""
    old = os.environ.get("ELASTICITY_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ELASTICITY_CACHE"] = tmp
        try:
            # one resume save at the end, as in a real run where ten saves spread over thousands of steps cost < 0.5 %
            run = pretrain(world, preset, config, device=device, progress=False, use_shipped=False, resume_every=config.total_steps)
        finally:
            if old is None:
                os.environ.pop("ELASTICITY_CACHE", None)
            else:
                os.environ["ELASTICITY_CACHE"] = old
    # steady state, like the raw loop: from the end of step 3 to the end of the last step (its checkpoint write included)
    t = run.curve.set_index("step")["seconds"]
    return (config.total_steps - 3) * config.tokens_per_step / (run.seconds - t[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="*", default=list(CPU_PRESETS))
    parser.add_argument("--steps", type=int, default=40, help="timed steps per loop (nano/micro; fewer for larger presets)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of both loops (the library's default is 1)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per loop; the best of each is reported")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None,
                        help="where both loops run (default: $ELASTICITY_DEVICE, else CUDA when present, else the CPU)")
    args = parser.parse_args()

    device = choose_device(args.device)
    world = World()
    peak = matmul_peak(args.threads, device)
    print(f"device {device}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; torch {torch.__version__}")
    if device.type == "cuda":
        print(f"{torch.cuda.get_device_name(0)}: bf16 4096×4096 matmul peak {peak / 1e12:.1f} TFLOP/s; plain loop = bf16 autocast + TF32 + fused AdamW")
    else:
        peak_all = matmul_peak(os.cpu_count() or 1, device)
        print(f"fp32 1024×1024 matmul peak: {peak / 1e9:.1f} GFLOP/s with {args.threads} thread(s), {peak_all / 1e9:.1f} with {os.cpu_count()}")
    header = f"{'preset':>7} {'params':>9} {'raw tok/s':>10} {'lib tok/s':>10} {'ratio':>6} {'GFLOP/s':>8} {'of peak':>8}"
    print(header)
    for preset in args.presets:
        params = count_parameters(random_model(preset, len(world.vocabulary)))
        steps = max(8, int(args.steps * min(1.0, 2e5 / params) ** 0.5))
        config = PretrainConfig(tokens=steps * args.batch_size * args.seq_len, batch_size=args.batch_size, seq_len=args.seq_len,
                                checkpoints=(steps * args.batch_size * args.seq_len,), eval_tokens=0, threads=args.threads)
        # alternate the two loops and keep each one's best round: on a shared machine other processes
        # only ever slow a round down, so the best of a few is the least disturbed measurement of each
        raws, libs = [], []
        for _ in range(args.rounds):
            raws.append(raw_loop(preset, world, config, steps, device))
            libs.append(library_loop(preset, world, config, device))
        raw, lib = max(raws), max(libs)
        flops = 6 * params * lib
        print(f"{preset:>7} {params:>9,} {raw:>10,.0f} {lib:>10,.0f} {lib / raw:>6.2f} {flops / 1e9:>8.2f} {flops / peak:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
