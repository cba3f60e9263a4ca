"""Diagnostics: ArviZ conversion, PSIS and ESS of importance weights, chain convergence, plots.

- :mod:`~pyro_dgm.diagnostics.arviz_conversion`: guide samples, importance weights and
  Markov chains → :class:`arviz.InferenceData`;
- :mod:`~pyro_dgm.diagnostics.importance_diagnostics`: Pareto :math:`\\hat k` per data
  point, Kish ESS, :func:`importance_summary`;
- :mod:`~pyro_dgm.diagnostics.chain_diagnostics`: rank :math:`\\hat R`, bulk/tail ESS,
  :func:`chain_summary` (unit states), :func:`trace_summary` (named scalar traces),
  :func:`record_block_gibbs` (RBM chains recorded sweep by sweep);
- :mod:`~pyro_dgm.diagnostics.plots_images` and :mod:`~pyro_dgm.diagnostics.plots_curves`:
  PNG figures (Agg canvas, no display). See ``docs/evaluation.md``.

May import: :mod:`pyro_dgm.infer` (the importance weights and estimators it diagnoses),
:mod:`pyro_dgm.models`, :mod:`pyro_dgm.nn`, :mod:`pyro_dgm.distributions`, ArviZ and
matplotlib; not :mod:`pyro_dgm.bihm` (its peer) or :mod:`pyro_dgm.cli`.
"""

from pyro_dgm.diagnostics.arviz_conversion import (
    IMPORTANCE_DIAGNOSTICS_GROUP,
    chains_to_inference_data,
    guide_samples_to_inference_data,
    importance_weights_to_inference_data,
    traces_to_inference_data,
)
from pyro_dgm.diagnostics.chain_diagnostics import (
    RHAT_THRESHOLD,
    bulk_ess,
    chain_summary,
    rank_rhat,
    record_block_gibbs,
    tail_ess,
    trace_summary,
)
from pyro_dgm.diagnostics.importance_diagnostics import (
    PSIS_KHAT_THRESHOLD,
    importance_summary,
    khat_threshold,
    kish_ess,
    pareto_khat,
    psis,
)
from pyro_dgm.diagnostics.plots_curves import (
    plot_estimates_vs_num_samples,
    plot_learning_curves,
    plot_running_log_mean_exp,
    read_metrics,
    running_log_mean_exp,
)
from pyro_dgm.diagnostics.plots_images import (
    save_chain_evolution,
    save_image_grid,
    save_inpainting_grid,
    tile_grid,
)

__all__ = [
    "IMPORTANCE_DIAGNOSTICS_GROUP",
    "PSIS_KHAT_THRESHOLD",
    "RHAT_THRESHOLD",
    "bulk_ess",
    "chain_summary",
    "chains_to_inference_data",
    "guide_samples_to_inference_data",
    "importance_summary",
    "importance_weights_to_inference_data",
    "khat_threshold",
    "kish_ess",
    "pareto_khat",
    "plot_estimates_vs_num_samples",
    "plot_learning_curves",
    "plot_running_log_mean_exp",
    "psis",
    "rank_rhat",
    "read_metrics",
    "record_block_gibbs",
    "running_log_mean_exp",
    "save_chain_evolution",
    "save_image_grid",
    "save_inpainting_grid",
    "tail_ess",
    "tile_grid",
    "trace_summary",
    "traces_to_inference_data",
]
