r"""BiHM's :math:`Z^2` (Eq. 7) for sigmoid-belief-net stacks, on plain tensors and fast.

:func:`~pyro_dgm.infer.estimators.bihm_partition.estimate_log_partition_squared` estimates
:math:`Z^2` for *any* Pyro model/guide pair through traces. For the Helmholtz pair
of a :class:`~pyro_dgm.models.sbn.SigmoidBeliefNet` :math:`p` and a
:class:`~pyro_dgm.models.sbn_guides.BottomUpGuide` :math:`q` the same estimator is
written here on the modules' weight matrices, with no tracing, so that the
:math:`10^6 \ldots 10^7` samples BiHM Sec. 4.1 asks for take seconds, not hours.

The estimator (BiHM Eq. 7), for :math:`K_o` outer samples :math:`(x_j, h_j) \sim p`
and :math:`K_i` inner samples :math:`h'_{jk} \sim q(h \mid x_j)` each:

.. math::

    \hat Z^2 = \frac{1}{K_o} \sum_{j=1}^{K_o} t_j, \qquad
    t_j = \sqrt{\frac{q(h_j \mid x_j)}{p(x_j, h_j)}}\;
          \frac{1}{K_i} \sum_{k=1}^{K_i} \sqrt{\frac{p(x_j, h'_{jk})}{q(h'_{jk} \mid x_j)}} ,

unbiased for :math:`Z^2` for every :math:`K_i` (the inner mean is unbiased for
:math:`\sqrt{\tilde p^*(x_j)}` given :math:`x_j`). The result is the same
:class:`~pyro_dgm.infer.estimators.bihm_partition.PartitionEstimate` (``log Z^2`` with its
delta-method standard error) the generic estimator returns, so it plugs into
:func:`~pyro_dgm.infer.estimators.bihm_partition.bihm_log_likelihood` for :math:`\log p^*(x)`.

How the work is organised (all of it vectorised over a chunk of B outer samples,
in preallocated buffers, under :func:`torch.inference_mode`):

1. **Top-down**: :math:`h_L, \dots, h_1, x` drawn from :math:`p`, each Bernoulli by
   comparing uniforms with :math:`\sigma(a)`, accumulating :math:`\log p(x, h)`.
2. **Bottom-up, outer and inner rows in one matrix product per layer**: the
   logits of :math:`q(h_1 \mid x)` are computed *once* and serve both the outer
   density :math:`q(h_1 \mid x_j)` and the inner samples :math:`h'_1`; above layer
   1 the outer rows :math:`h_{l-1}` and the :math:`K_i` inner rows
   :math:`h'_{l-1}` are stacked into one ``mm``.
3. **Top-down again** on the inner rows: :math:`\log p(x, h')`.

Per layer there is one matrix product (BLAS, without the bias) and one fused
element-wise kernel (:mod:`pyro_dgm.bihm.fused_bernoulli`: bias, sigmoid, uniform,
comparison and log-density in a single compiled pass, sharing one exponential).
The uniforms come from :class:`~pyro_dgm.bihm.random_bits.RandomBits`, all of a
chunk's words at once, made on two threads. Two normalisers cancel exactly
between the outer and inner factors of :math:`t_j` and are never computed: the
prior's :math:`\sum_i \operatorname{softplus}(b_i)` and, for the shared
:math:`q(h_1 \mid x_j)` logits, :math:`\sum_i \operatorname{softplus}(a_{1,i}(x_j))`.

Matrix products per outer sample, with :math:`P_l = H_l H_{l+1}` (:math:`H_0 = D`)
and :math:`S = \sum_l P_l`: :math:`S` (top-down sampling) + :math:`S` (bottom-up
density, layer 1 shared) + :math:`K_i (S - P_0)` (inner sampling) + :math:`K_i S`
(inner top-down density) multiply-adds; see :func:`multiply_adds_per_outer_sample`.
For BiHM's MNIST net and :math:`K_i = 1` that is 1,089,000.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pyro_dgm.bihm import fused_bernoulli
from pyro_dgm.bihm.random_bits import RandomBits
from pyro_dgm.distributions.argument_checks import check_int
from pyro_dgm.infer.estimators.bihm_partition import BiHMLogLikelihoodEstimate, PartitionEstimate, bihm_log_likelihood
from pyro_dgm.infer.estimators.log_likelihood import StreamingLogPowerSums, iter_chunks
from pyro_dgm.infer.objectives.bihm import BHATTACHARYYA_POWER
from pyro_dgm.models.sbn import SigmoidBeliefNet, check_layer_sizes
from pyro_dgm.models.sbn_guides import BottomUpGuide

DEFAULT_CHUNK_SIZE = 4096
r"""Outer samples per vectorised pass. Every buffer is :math:`(1 + K_i) B` rows by one
layer's width; for BiHM's MNIST net and :math:`K_i = 1` that is about 160 MB in
float32 at B = 4096 (buffers and random words). Measured on 2 threads: 4096 gave
54k samples/s, 2048 gave 49k and 8192 gave 53k."""

DEFAULT_NUM_SAMPLES = 1000
r"""Guide samples K per data point for :math:`\tilde p^*(x)` (BiHM Fig. 1C: K = 100
already gives a good BiHM estimate)."""




def multiply_adds_per_outer_sample(layer_sizes: Sequence[int], num_inner: int = 1) -> int:
    r"""Multiply-adds of the matrix products per outer sample: :math:`2S + K_i(2S - P_0)`.

    :math:`P_l = H_l H_{l+1}` for ``layer_sizes`` :math:`[H_0 = D, H_1, \dots, H_L]`
    and :math:`S = \sum_l P_l`. The outer sample costs :math:`S` to draw from
    :math:`p` and :math:`S` to score under :math:`q`; each inner sample costs
    :math:`S - P_0` to draw from :math:`q` (its :math:`q(h_1 \mid x)` logits are the
    outer's) and :math:`S` to score under :math:`p`. Without sharing it would be
    :math:`2S(1 + K_i)`. The prior's dot products (:math:`H_L` per row) are
    not counted. BiHM's MNIST net, :math:`K_i = 1`: 1,089,000.
    """
    sizes = check_layer_sizes(layer_sizes)
    check_int("num_inner", num_inner)
    products = [lower * upper for lower, upper in zip(sizes[:-1], sizes[1:])]
    total = sum(products)
    return 2 * total + num_inner * (2 * total - products[0])


@dataclass(frozen=True)
class AffineMap:
    r"""Logits :math:`a = c\,W + b` of one sigmoid belief layer, as plain tensors.

    :ivar weight: :math:`W`, shape (in_features, out_features) (a transposed view
        of ``nn.Linear.weight``; BLAS reads it without a copy).
    :ivar bias: :math:`b`, shape (out_features,).
    """

    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> AffineMap:
        return cls(weight=linear.weight.detach().t(), bias=linear.bias.detach())

    def products(self, context: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """:math:`cW` (no bias) for ``context`` of shape (rows, in_features), into ``out`` if given."""
        return torch.mm(context, self.weight, out=out)


def _single_linear(module: nn.Module, description: str) -> nn.Linear:
    layers = list(module.net) if isinstance(module.net, nn.Sequential) else []
    if len(layers) != 1 or not isinstance(layers[0], nn.Linear) or layers[0].bias is None:
        raise ValueError(
            f"{description} has deterministic hidden layers; the fast SBN path needs plain "
            "sigmoid belief layers (hidden_sizes=()): use "
            "pyro_dgm.infer.estimators.bihm_partition.estimate_log_partition_squared instead"
        )
    return layers[0]


@dataclass(frozen=True)
class SigmoidBeliefStack:
    r"""The weights of a BiHM's two directed nets, detached, as plain tensors.

    :ivar layer_sizes: :math:`(D, H_1, \dots, H_L)`.
    :ivar prior_logits: :math:`b` of :math:`p(h_L) = \prod_i \mathcal B(\sigma(b_i))`.
    :ivar generative: ``generative[l]`` gives the logits of :math:`p(h_l \mid h_{l+1})`,
        :math:`l = 0 \dots L-1`, :math:`h_0 = x`.
    :ivar recognition: ``recognition[l - 1]`` gives the logits of
        :math:`q(h_l \mid h_{l-1})`, :math:`l = 1 \dots L`.

    The tensors share storage with the modules' parameters: build the stack after
    training steps, not before.
    """

    layer_sizes: tuple[int, ...]
    prior_logits: torch.Tensor
    generative: tuple[AffineMap, ...]
    recognition: tuple[AffineMap, ...]

    @classmethod
    def from_modules(cls, model: SigmoidBeliefNet, guide: BottomUpGuide) -> SigmoidBeliefStack:
        """Read a :class:`SigmoidBeliefNet` and a matching :class:`BottomUpGuide`."""
        if not isinstance(model, SigmoidBeliefNet):
            raise ValueError(f"model must be a SigmoidBeliefNet, got {type(model).__name__}")
        if not isinstance(guide, BottomUpGuide):
            raise ValueError(f"guide must be a BottomUpGuide, got {type(guide).__name__}")
        if list(model.layer_sizes) != list(guide.layer_sizes):
            raise ValueError(
                f"model and guide layer sizes differ: {model.layer_sizes} vs {guide.layer_sizes}"
            )
        generative = tuple(
            AffineMap.from_linear(_single_linear(layer, f"model.conditionals[{index}]"))
            for index, layer in enumerate(model.conditionals)
        )
        recognition = tuple(
            AffineMap.from_linear(_single_linear(layer, f"guide.conditionals[{index}]"))
            for index, layer in enumerate(guide.conditionals)
        )
        prior_logits = model.prior.bias.detach()
        guide_parameter = guide.conditionals[0].net[0].weight
        if (guide_parameter.device, guide_parameter.dtype) != (prior_logits.device, prior_logits.dtype):
            raise ValueError(
                f"model parameters are {prior_logits.dtype} on {prior_logits.device} but the "
                f"guide's are {guide_parameter.dtype} on {guide_parameter.device}"
            )
        return cls(tuple(model.layer_sizes), prior_logits, generative, recognition)

    @property
    def num_latent_layers(self) -> int:
        return len(self.layer_sizes) - 1


SOFTPLUS_THRESHOLD = 20.0
r"""Softplus returns its input above this: the error :math:`\log(1 + e^{-20}) \approx
2 \times 10^{-9}` is below float32 resolution (torch's default threshold)."""


def bernoulli_log_prob_(logits: torch.Tensor, value: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_i \log \mathcal B(h_i \mid \sigma(a_i)) = -\sum_i \operatorname{softplus}((1 - 2h_i) a_i)`.

    Summed over the last dim; ``scratch`` has the broadcast shape of ``logits`` and
    ``value`` and is overwritten. Two element-wise passes and a reduction.
    """
    torch.addcmul(logits, value, logits, value=-2.0, out=scratch)  # (1 - 2h) a
    torch.ops.aten.softplus.out(scratch, 1.0, SOFTPLUS_THRESHOLD, out=scratch)  # in place, stable
    return -scratch.sum(dim=-1)


class _Workspace:
    r"""Preallocated buffers for chunks of ``num_rows`` outer samples with ``num_inner`` each.

    Rows ``[:B]`` of every latent buffer hold the outer samples :math:`h_l`, rows
    ``[B:]`` the :math:`K_i` inner samples :math:`h'_l` (inner index major), so a
    bottom-up product on all :math:`(1 + K_i) B` rows is one ``mm``. ``products[l]``
    receives the bias-free matrix products of layer :math:`l` (the bias is added in
    the fused kernels).
    """

    def __init__(self, stack: SigmoidBeliefStack, num_rows: int, num_inner: int) -> None:
        total_rows = (1 + num_inner) * num_rows
        options = {"dtype": stack.prior_logits.dtype, "device": stack.prior_logits.device}
        data_size, *latent_sizes = stack.layer_sizes
        self.num_rows = num_rows
        self.num_inner = num_inner
        self.states = [torch.empty(num_rows, data_size, **options)] + [
            torch.empty(total_rows, size, **options) for size in latent_sizes
        ]
        self.products = [torch.empty(total_rows, size, **options) for size in stack.layer_sizes]
        self.no_products = torch.zeros(total_rows, latent_sizes[-1], **options)  # the prior has only a bias
        top_down = [(num_rows, size) for size in reversed(stack.layer_sizes)]  # h_L, ..., h_1, x ~ p
        inner = [(num_inner * num_rows, size) for size in latent_sizes]  # h'_1, ..., h'_L ~ q
        self.random_word_shapes = top_down + inner  # (rows, width) of each request, in order of use


class _BitStream:
    """The random words of one chunk, handed out request by request in the order of ``shapes``."""

    def __init__(self, source: RandomBits, shapes: Sequence[tuple[int, int]]) -> None:
        self.shapes = list(shapes)
        self.pieces = source.draw([rows * width for rows, width in self.shapes])
        self.position = 0

    def take(self, rows: int, width: int) -> torch.Tensor:
        """The next request's words as a (rows, width) tensor; the shape must be the next one listed."""
        expected = self.shapes[self.position]
        if (rows, width) != expected:
            raise RuntimeError(f"random words requested as {(rows, width)} but drawn as {expected}")
        piece = self.pieces[self.position].view(rows, width)
        self.position += 1
        return piece


def _repeat_rows(rows: torch.Tensor, times: int) -> torch.Tensor:
    """``rows`` stacked ``times`` times along dim 0 (no copy for once): the kernels see 2-D operands only."""
    return rows if times == 1 else rows.repeat(times, 1)


def _log_outer_terms(stack: SigmoidBeliefStack, workspace: _Workspace, source: RandomBits) -> torch.Tensor:
    r""":math:`\log t_j` of Eq. 7 for one chunk of outer samples, shape (B,).

    ``outer`` accumulates :math:`\log p(x_j, h_j) - \log q(h_j \mid x_j)` and ``inner``
    :math:`\ell_{jk} = \log p(x_j, h'_{jk}) - \log q(h'_{jk} \mid x_j)`, both less the
    normalisers that cancel in :math:`t_j`; then
    :math:`\log t_j = -\tfrac12 \ell_j + \log \frac1{K_i} \sum_k e^{\ell_{jk}/2}`.
    """
    rows, num_inner, top = workspace.num_rows, workspace.num_inner, stack.num_latent_layers
    states, products = workspace.states, workspace.products
    bits = _BitStream(source, workspace.random_word_shapes)
    generative, recognition, prior_logits = stack.generative, stack.recognition, stack.prior_logits
    x, sizes = states[0], stack.layer_sizes

    # 1. (x, h) ~ p top-down, accumulating log p(x, h) (prior normaliser dropped: cancels)
    outer = fused_bernoulli.sample_and_dot_(
        workspace.no_products[:rows], prior_logits, bits.take(rows, sizes[top]), states[top][:rows]
    )
    for layer in range(top - 1, -1, -1):
        layer_products = generative[layer].products(states[layer + 1][:rows], out=products[layer][:rows])
        outer = outer + fused_bernoulli.sample_and_score_(
            layer_products, generative[layer].bias, bits.take(rows, sizes[layer]), states[layer][:rows]
        )

    # 2. bottom-up: score h under q (outer rows), draw h' ~ q(.|x) (inner rows).
    # Layer 1: one set of logits q(h1 | x_j) for both; its softplus normaliser cancels.
    first, first_bias = recognition[0].products(x, out=products[1][:rows]), recognition[0].bias
    outer = outer - fused_bernoulli.dot(first, first_bias, states[1][:rows])
    inner = -fused_bernoulli.sample_and_dot_(
        _repeat_rows(first, num_inner), first_bias, bits.take(num_inner * rows, sizes[1]), states[1][rows:]
    )
    for layer in range(2, top + 1):
        layer_products = recognition[layer - 1].products(states[layer - 1], out=products[layer])
        bias = recognition[layer - 1].bias
        outer = outer - fused_bernoulli.score(layer_products[:rows], bias, states[layer][:rows])
        inner = inner - fused_bernoulli.sample_and_score_(
            layer_products[rows:], bias, bits.take(num_inner * rows, sizes[layer]), states[layer][rows:]
        )

    # 3. log p(x, h') top-down on the inner rows
    inner = inner + fused_bernoulli.dot(workspace.no_products[rows:], prior_logits, states[top][rows:])
    for layer in range(top - 1, 0, -1):
        layer_products = generative[layer].products(states[layer + 1][rows:], out=products[layer][rows:])
        inner = inner + fused_bernoulli.score(layer_products, generative[layer].bias, states[layer][rows:])
    data_products = generative[0].products(states[1][rows:], out=products[0][rows:])
    inner = inner + fused_bernoulli.score(data_products, generative[0].bias, _repeat_rows(x, num_inner))

    log_inner = torch.logsumexp(BHATTACHARYYA_POWER * inner.view(num_inner, rows), dim=0)
    return log_inner - math.log(num_inner) - BHATTACHARYYA_POWER * outer  # Eq. 7


def estimate_sbn_log_partition_squared(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    *,
    num_outer: int,
    num_inner: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> PartitionEstimate:
    r"""Estimate :math:`\log Z^2` of a sigmoid-belief-net BiHM by Eq. 7, fast.

    The same estimator as :func:`~pyro_dgm.infer.estimators.bihm_partition.estimate_log_partition_squared`
    (see the module docstring), on the modules' weights.

    :param model: the top-down :class:`SigmoidBeliefNet` :math:`p`, plain layers.
    :param guide: the :class:`BottomUpGuide` :math:`q`, same layer sizes.
    :param num_outer: :math:`K_o`, samples :math:`(x, h) \sim p`.
    :param num_inner: :math:`K_i`, samples :math:`h' \sim q(h \mid x)` per outer
        sample; :math:`K_i = 1` is the most efficient per sample (BiHM Fig. 3).
    :param chunk_size: outer samples per pass; memory is that of one chunk.
    :param generator: the source of the uniforms (default: torch's global one).
    :param progress: show a tqdm bar over chunks.

    Example::

        partition = estimate_sbn_log_partition_squared(model, guide, num_outer=10**7)
        partition.log_partition_squared, partition.standard_error
    """
    check_int("num_inner", num_inner)
    stack = SigmoidBeliefStack.from_modules(model, guide)
    sums = StreamingLogPowerSums(powers=(1.0, 2.0))
    workspaces: dict[int, _Workspace] = {}
    with torch.inference_mode(), RandomBits(stack.prior_logits.device, generator) as source:
        for size in iter_chunks(num_outer, chunk_size, progress, "partition samples"):
            if size not in workspaces:  # at most two sizes: chunk_size and the remainder
                workspaces.clear()
                workspaces[size] = _Workspace(stack, size, num_inner)
            sums.update(_log_outer_terms(stack, workspaces[size], source))
    return PartitionEstimate.from_sums(sums, num_inner)


def sbn_bihm_log_likelihood(
    model: SigmoidBeliefNet,
    guide: BottomUpGuide,
    x: torch.Tensor,
    *,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    partition: PartitionEstimate | None = None,
    num_outer: int | None = None,
    num_inner: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    generator: torch.Generator | None = None,
) -> BiHMLogLikelihoodEstimate:
    r""":math:`\log p^*(x) = \log \tilde p^*(x) - \log Z^2` per data point (BiHM Eq. 1, 4, 7).

    :math:`\log \tilde p^*(x)` comes from ``num_samples`` guide samples by the generic
    :func:`~pyro_dgm.infer.estimators.bihm_partition.bihm_log_likelihood`; :math:`Z^2` is ``partition``
    if given, else :func:`estimate_sbn_log_partition_squared` with ``num_outer``
    outer samples (estimate it once and pass it for every batch of data).
    """
    if partition is None:
        if num_outer is None:
            raise ValueError("pass partition= (a PartitionEstimate) or num_outer= to estimate one")
        partition = estimate_sbn_log_partition_squared(
            model, guide, num_outer=num_outer, num_inner=num_inner, chunk_size=chunk_size, generator=generator
        )
    return bihm_log_likelihood(model, guide, x, partition=partition, num_samples=num_samples)
