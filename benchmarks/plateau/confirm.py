"""Collapse plateau (docs/plateau.md): per-epoch validation -ELBO on the full 50k training set.

``python -m benchmarks.plateau.confirm {linear,nonlinear} {old,new} EPOCHS OUT.json``: the
DVAE++ Table 1 joint-ELBO network with the harness's recipe; ``old`` restores bias -1 in
every layer (before the fix), ``new`` is the library's init plus the decoder's output
biases at the pixel log-odds (what ``benchmarks/reproduce.py`` does).
"""
import sys, time, json, math
import torch, pyro
from torch import nn
torch.set_num_threads(1)
from pyro.infer import SVI
from benchmarks.reproduce import build_smoothed_vae, dvae_schedule, dvae_objective
from benchmarks.reproduce_configs import JOINT, DVAEPP_BETA_START, DVAEPP_BETA_END, DVAEPP_LEARNING_RATE, DVAEPP_ADAM_EPS
from pyro_dgm.data import load_dataset, BinarizedBatches
from pyro_dgm.nn.bernoulli_layer import BIHM_BIAS_INIT

ROOT = "/work/shared/data/binarized_mnist"
network, recipe, epochs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
pyro.clear_param_store(); pyro.set_rng_seed(seed)
x = load_dataset("binarized_mnist", "train", root=ROOT)
xv = load_dataset("binarized_mnist", "valid", root=ROOT)[:1000]
model, guide = build_smoothed_vae(JOINT, 784, 1, 200, network, DVAEPP_BETA_START)
if recipe == "old":  # BiHM's -1 everywhere, decoder output bias -1 (before the fix)
    for m in (*model.modules(), *guide.modules()):
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.bias.fill_(BIHM_BIAS_INIT)
else:
    model.decoder.init_marginals_(x.mean(0))
steps = epochs * (x.size(0) // 100)
sched = dvae_schedule(JOINT, DVAEPP_BETA_START, DVAEPP_BETA_END, 0.0)
obj = dvae_objective(JOINT, 1, 1)
svi = SVI(model, guide, pyro.optim.Adam({"lr": DVAEPP_LEARNING_RATE, "eps": DVAEPP_ADAM_EPS}), loss=obj)
batches = BinarizedBatches(x, 100, binarization="none", seed=0)
curve, step, t0 = [], 0, time.time()
def valid():
    pyro.set_rng_seed(123)
    with torch.no_grad():
        return obj.loss(model, guide, xv, num_data=xv.size(0), **sched(min(step, steps - 1), steps)) / xv.size(0)
curve.append({"epoch": 0, "valid_neg_elbo": valid(), "train_neg_elbo": None})
for epoch in range(1, epochs + 1):
    acc = 0.0
    for xb in batches:
        loss = svi.step(xb, num_data=x.size(0), **sched(step, steps)) / x.size(0); step += 1
        if not math.isfinite(loss):
            bad = [n for n, p in (*model.named_parameters(), *guide.named_parameters()) if not torch.isfinite(p).all()]
            print(f"non-finite loss at step {step}; non-finite parameters: {bad}", flush=True)
            sys.exit(1)
        acc += loss
    curve.append({"epoch": epoch, "train_neg_elbo": acc / (x.size(0) // 100), "valid_neg_elbo": valid(), "seconds": time.time() - t0})
    print(network, recipe, curve[-1], flush=True)
    json.dump({"network": network, "recipe": recipe, "epochs": epochs, "curve": curve, "command": " ".join(sys.argv)}, open(out, "w"), indent=1)
