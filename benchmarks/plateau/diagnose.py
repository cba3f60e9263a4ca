"""Collapse-plateau diagnostics (docs/plateau.md): init statistics and short runs on a subset.

``python -m benchmarks.plateau.diagnose NETWORK ELBO INIT STEPS LR ADAM_EPS WARMUP N_TRAIN``;
INIT is a ``+``-joined list of: ``bihm`` (bias -1 in every layer: the recipe before the
fix), ``hid0`` (zero hidden biases: the library default now), ``torch`` (PyTorch's
default init), ``outbias`` (decoder output biases at the pixel log-odds). Prints
activation statistics at init and after training, and the validation -ELBO every 200 steps.
"""
import sys, time, json, math
import torch, pyro
from torch import nn
torch.set_num_threads(1)
from benchmarks.reproduce import build_smoothed_vae, dvae_schedule, dvae_objective
from benchmarks.reproduce_configs import JOINT, MARGINAL, DVAEPP_BETA_START, DVAEPP_BETA_END
from pyro_dgm.data import load_dataset, BinarizedBatches
from pyro.infer import SVI

ROOT = "/work/shared/data/binarized_mnist"

def variant_init(module, how):
    for m in module.modules():
        if isinstance(m, nn.Sequential):
            linears = [l for l in m if isinstance(l, nn.Linear)]
            for i, l in enumerate(linears):
                last = i == len(linears) - 1
                with torch.no_grad():
                    if how == "hid0" and not last:
                        l.bias.zero_()
                    if how == "bihm":
                        l.bias.fill_(-1.0)
                    if how == "torch":
                        l.reset_parameters()

def stats(model, guide, x):
    out = {}
    enc = guide.networks[0].net
    dec = model.decoder.net
    def chain(net, inp, tag):
        h = inp
        for i, layer in enumerate(net):
            h = layer(h)
            if isinstance(layer, (nn.Tanh, nn.Linear)):
                # per-unit std across data, averaged; mean abs
                out[f"{tag}{i}:{type(layer).__name__}"] = (round(h.std(0).mean().item(), 3), round(h.mean().item(), 3))
        return h
    chain(enc, x, "enc")
    q = torch.sigmoid(guide.networks[0].logits(x))
    z = (torch.rand_like(q) < q).float()
    chain(dec, z, "dec")
    return out

def run(network, column, how, steps, lr, eps, warm, n_train, seed=0, log_every=100):
    pyro.clear_param_store(); pyro.set_rng_seed(seed)
    x = load_dataset("binarized_mnist", "train", root=ROOT)[:n_train]
    xv = load_dataset("binarized_mnist", "valid", root=ROOT)[:1000]
    model, guide = build_smoothed_vae(column, 784, 1, 200, network, DVAEPP_BETA_START)
    for part in how.split("+"):
        variant_init(model, part); variant_init(guide, part)
        if part == "outbias":
            with torch.no_grad():
                p = x.mean(0).clamp(1e-3, 1 - 1e-3)
                model.decoder.net[-1].bias.copy_(torch.log(p) - torch.log1p(-p))
        if part == "center":
            pass
    print('INIT', json.dumps(stats(model, guide, x[:500])))
    sched = dvae_schedule(column, DVAEPP_BETA_START, DVAEPP_BETA_END, warm)
    obj = dvae_objective(column, 1, 1)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": lr, "eps": eps}), loss=obj)
    batches = BinarizedBatches(x, 100, binarization="none", seed=seed)
    step, acc, cnt, t0 = 0, 0.0, 0, time.time()
    while step < steps:
        for xb in batches:
            kw = sched(step, steps)
            acc += svi.step(xb, num_data=n_train, **kw) / n_train; cnt += 1; step += 1
            if step % log_every == 0 and step % 200 == 0:
                with torch.no_grad():
                    vl = obj.loss(model, guide, xv, num_data=1000, **sched(steps - 1, steps)) / 1000
                print(f"{network} {column.name} {how} lr={lr} eps={eps} warm={warm} step {step} train {acc/cnt:.2f} valid(-elbo,beta_end) {vl:.2f} t={time.time()-t0:.0f}s", flush=True)
                acc, cnt = 0.0, 0
            if step >= steps:
                break
    print("END", json.dumps(stats(model, guide, x[:500])))
    enc=guide.networks[0].net; dec=model.decoder.net
    for tag, net, inp in (("enc", enc, x[:500]), ("dec", dec, (torch.rand(500,200) < torch.sigmoid(guide.networks[0].logits(x[:500]))).float())):
        h = inp
        for layer in net:
            h = layer(h)
            if isinstance(layer, nn.Tanh):
                print(tag, "sat>0.95", round((h.abs() > 0.95).float().mean().item(), 3), "unit-mean |mean_over_data|", round(h.mean(0).abs().mean().item(), 3), "std over data", round(h.std(0).mean().item(), 3))
        if tag=="dec": print("dec out std over data", h.std(0).mean().item())

if __name__ == "__main__":
    a = sys.argv[1:]
    network, col, how, steps, lr, eps, warm, n = a[0], {"joint": JOINT, "marginal": MARGINAL}[a[1]], a[2], int(a[3]), float(a[4]), float(a[5]), float(a[6]), int(a[7])
    run(network, col, how, steps, lr, eps, warm, n)
