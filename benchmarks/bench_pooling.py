"""Max pooling in training: PyTorch's kernel against ways around its int64 indices.

``bench_widths.py --profile`` found max pooling at 20% to 28% of a training step on
a CPU, and named a pooling without PyTorch's 8-byte indices as the next speed lever.
This measures, side by side in alternating rounds, the forward and backward pass of
every max pooling layer of the network at the shapes and dtype training gives them
(captured from a real training step of the estimator as ``bench_widths.py`` builds
it: batch 32, ``precision="auto"``, flips, channels-last), for:

- ``native``: ``F.max_pool2d``, what the network runs (``max_pool2d_with_indices``);
- ``maxima``: elementwise ``torch.maximum`` of shifted views (separable for the
  3x3 stride-1 pooling of the modules' branches), differentiated by autograd: no
  indices, and no pooling kernel at all;
- ``masks``: the native forward without autograd, and a backward that sends each
  output's gradient to the inputs equal to its maximum (a tie sends it to each);
- ``onednn``: oneDNN's pooling through ``to_mkldnn`` tensors, whose workspace
  holds 1-byte indices;
- ``inductor``: ``torch.compile`` of the pooling alone (Inductor's own pooling
  kernels, compiled once per shape before the rounds).

The ratio is the native time over the alternative's: above 1 is faster than
PyTorch's kernel. Examples::

    python benchmarks/bench_pooling.py --threads 1
    python benchmarks/bench_pooling.py --presets small paper --rounds 5
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from bench_training import _data
from bench_widths import _model
from torch import nn

from idc_sklearn import PRESETS


def native(x, k, s, p):
    return F.max_pool2d(x, k, s, p)


def maxima(x, k, s, p):
    """Max pooling from elementwise maxima of shifted views (k=3, s=1 or k=s)."""
    if s == 1:
        x = F.pad(x, (p, p, p, p), value=float("-inf"))
        w = x[..., :, : x.shape[-1] - k + 1]
        for i in range(1, k):
            w = torch.maximum(w, x[..., :, i : i + x.shape[-1] - k + 1])
        out = w[..., : w.shape[-2] - k + 1, :]
        for i in range(1, k):
            out = torch.maximum(out, w[..., i : i + w.shape[-2] - k + 1, :])
        return out
    h, w = (x.shape[-2] // k) * k, (x.shape[-1] // k) * k
    views = [x[..., i:h:k, j:w:k] for i in range(k) for j in range(k)]
    out = views[0]
    for view in views[1:]:
        out = torch.maximum(out, view)
    return out


class _MaskPool(torch.autograd.Function):
    """The native forward; a backward from equality masks instead of indices."""

    @staticmethod
    def forward(ctx, x, k, s, p):
        out = F.max_pool2d(x.detach(), k, s, p)
        ctx.save_for_backward(x, out)
        ctx.geometry = (k, s, p)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        k, s, p = ctx.geometry
        if s == k and p == 0:  # windows that do not overlap
            up = out.repeat_interleave(k, -2).repeat_interleave(k, -1)
            g = grad.repeat_interleave(k, -2).repeat_interleave(k, -1)
            gi = torch.zeros_like(x)
            h, w = up.shape[-2:]
            gi[..., :h, :w] = torch.where(x[..., :h, :w] == up, g, 0)
            return gi, None, None, None
        h, w = x.shape[-2:]
        padded_out = F.pad(out, (p, p, p, p), value=float("inf"))
        padded_grad = F.pad(grad, (p, p, p, p))
        gi = torch.zeros_like(x)
        for dy in range(k):
            for dx in range(k):
                o = padded_out[..., dy : dy + h, dx : dx + w]
                gi += torch.where(x == o, padded_grad[..., dy : dy + h, dx : dx + w], 0)
        return gi, None, None, None


def masks(x, k, s, p):
    return _MaskPool.apply(x, k, s, p)


def onednn(x, k, s, p):
    pooled = torch.ops.aten.mkldnn_max_pool2d(x.to_mkldnn(), [k, k], [s, s], [p, p])
    return pooled.to_dense()


# One compiled graph per shape and geometry: more than dynamo's default limit of 8.
torch._dynamo.config.recompile_limit = 256
_compiled = torch.compile(native, dynamic=False)


def inductor(x, k, s, p):
    return _compiled(x, k, s, p)


WAYS = {
    "native": native,
    "maxima": maxima,
    "masks": masks,
    "onednn": onednn,
    "inductor": inductor,
}


def pooling_inputs(preset: str, X, y) -> list[tuple]:
    """``(shape, dtype, kernel, stride, padding)`` of every max pooling call in one
    training step of the estimator at ``preset``."""
    model = _model(preset).initialize()
    seen = []

    def hook(module, args):
        (x,) = args
        k, s, p = (
            v if isinstance(v, int) else v[0]
            for v in (module.kernel_size, module.stride, module.padding)
        )
        seen.append((tuple(x.shape), x.dtype, k, s, p))

    handles = [
        m.register_forward_pre_hook(hook)
        for m in model.module_.modules()
        if isinstance(m, nn.MaxPool2d)
    ]
    model.partial_fit(X[:32], y[:32])
    for handle in handles:
        handle.remove()
    return seen


def step_time(way, calls, inputs, repeat: int) -> float:
    """Seconds for the forward and backward of every call, ``repeat`` times."""
    start = time.perf_counter()
    for _ in range(repeat):
        for (_, _, k, s, p), x in zip(calls, inputs, strict=True):
            out = way(x, k, s, p)
            out.backward(torch.ones_like(out))
    return (time.perf_counter() - start) / repeat


def check(way, calls, inputs) -> None:
    """The alternative's output and input gradient equal the native ones on the
    first two patches' inputs, without ties (distinct float32 integers, exact below
    2**24: where a window's maximum is tied, the native kernel sends its gradient
    to one input, ``masks`` to each, ``maxima`` splits it)."""
    generator = torch.Generator().manual_seed(0)
    for (_, _, k, s, p), x in zip(calls, inputs, strict=True):
        x = x[:2]
        x = torch.randperm(x.numel(), generator=generator).float().view(x.shape)
        x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
        grads = []
        for fn in (native, way):
            x.grad = None
            out = fn(x, k, s, p)
            out.backward(torch.arange(out.numel(), dtype=out.dtype).view_as(out) % 7)
            grads.append((out.detach().to_dense(), x.grad.clone()))
        torch.testing.assert_close(grads[0][0], grads[1][0], rtol=0, atol=0)
        torch.testing.assert_close(grads[0][1], grads[1][1])
        x.grad = None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--presets", nargs="+", default=["small", "medium", "paper"], choices=PRESETS
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s)"
    )
    X, y = _data(64)
    print(
        f"\n{'preset':8s} {'calls':>5s} {'dtype':>9s} {'native ms':>10s} "
        + " ".join(f"{w + ' ratio':>13s}" for w in WAYS if w != "native")
    )
    for preset in args.presets:
        calls = pooling_inputs(preset, X, y)
        generator = torch.Generator().manual_seed(0)
        inputs = [
            torch.randn(shape, generator=generator)
            .to(dtype)
            .contiguous(memory_format=torch.channels_last)
            .requires_grad_()
            for shape, dtype, *_ in calls
        ]
        for name, way in WAYS.items():
            if name != "native":
                check(way, calls, inputs)
        step_time(inductor, calls, inputs, 1)  # compiles at the timed dtypes
        times = defaultdict(list)
        for _ in range(args.rounds):
            for name, way in WAYS.items():
                times[name].append(step_time(way, calls, inputs, args.repeat))
        median = {name: float(np.median(t)) for name, t in times.items()}
        print(
            f"{preset:8s} {len(calls):5d} {str(calls[0][1]).split('.')[-1]:>9s} "
            f"{median['native'] * 1e3:10.1f} "
            + " ".join(
                f"{median['native'] / median[w]:13.2f}" for w in WAYS if w != "native"
            )
        )


if __name__ == "__main__":
    main()
