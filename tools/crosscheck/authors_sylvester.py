#!/usr/bin/env python3
"""Cross-check our Tables 2-3 models against the authors' PyTorch code.

For each model (sylvester, sylvester-nobasis, sylvester-nogen, resflow,
coupling) this builds the authors' DiscreteLowerboundModel as
experiment_sylvester_network.py does (at a reduced size unless --full),
runs one training forward (the ActNorms' data-dependent initialisation and
the spectral-norm power iterations, as training would), randomises every
parameter relative to its own scale (the zero-initialised heads too), converts
its state_dict with tools/convert_sylvester.py, and compares in evaluation
mode:
  - log p(v) of the same continuous inputs v (bits/dim difference);
  - the ELBO and log q(u|x) of the same images with the same dequantisation
    noise (variational dequantisation; their sampler is fed our noise);
  - samples decoded from the same base noise (top latent and split priors):
    the fixed-point inverses of the Sylvester layers and residual blocks.
The residual flow's log-determinant is an estimate on both sides; here both
use the exact one (theirs through a brute-force Jacobian patched into
iResBlock._logdetgrad, ours with fxp-crosscheck --exact-logdet), which
checks g, its spectral normalisation, LipSwish and the inverse.  Their
AblationWithoutGeneralization has no inverse: its decoding is not compared.
Our side runs build/tools/fxp-crosscheck.  Exit 0 if every difference is
within tolerance (1e-4 bits/dim; decoded samples 1e-3 relative to the pixel
range), 1 otherwise, 77 if the authors' code, torch or numpy is absent.
--tight runs the residual flow with power-iteration and inverse tolerances
near float resolution on both sides.

    python3 tools/crosscheck/authors_sylvester.py --authors DIR [--build build]
        [--models sylvester sylvester-nobasis ...] [--full] [--n 4]
"""
import argparse
import collections.abc
import contextlib
import io
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:  # checked again in main(), which skips
    np = None

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

MODELS = ("sylvester", "sylvester-nobasis", "sylvester-nogen", "resflow", "coupling")
MODEL_TYPE = {"sylvester": "sylvester", "sylvester-nobasis": "ablation_nobasis",
              "sylvester-nogen": "ablation_nogeneralized", "resflow": "residual_flow",
              "coupling": "coupling_flow"}


class Args:
    pass


def authors_args(model, full):
    a = Args()
    a.model_type = MODEL_TYPE[model]
    a.n_scales, a.n_densenets, a.dropout_p = 1, 1, 0.0
    a.use_gated_conv, a.mixing = False, "1x1"
    a.convexp_coeff, a.lipschitz_sylvester, a.truncation_convexp = 0.95, 1.5, 0
    a.squeeze_first = 1
    a.n_context = 32 if full else 8
    # the README: --n_intermediate_channels 528 for resflow / coupling only
    a.n_intermediate_channels = (528 if model in ("resflow", "coupling") else 64) if full else 8
    a.n_internal_channels = 528 if full else 24
    a.densenet_depth = 8 if full else 2
    a.densenet_growth = 64 if full else 6
    return a


def build_authors(model, size, full, seed):
    import torch
    from models.model import DiscreteLowerboundModel
    from models.distributions.flow import Flow
    from models.architectures.densenet import DenseNet
    from models.transformations.normalize import Normalize_without_ldj
    from models.distributions import TemplateDistribution
    from models.transformations.sigmoid import Sigmoid
    from models.transformations import ReverseTransformation
    from models.distributions.specific_models.sylvester_model import SylvesterModel
    from models.distributions.specific_models.residualflow_model import ResidualFlowModel
    from models.distributions.specific_models.coupling_model import CouplingModel
    from models.distributions.specific_models.ablations_model import Ablation

    a = authors_args(model, full)
    levels, subflows = (3, 16 if full else 2)
    torch.manual_seed(seed)
    np.random.seed(seed)
    cls = {"sylvester": SylvesterModel, "resflow": ResidualFlowModel,
           "coupling": CouplingModel}.get(model, Ablation)
    with contextlib.redirect_stdout(io.StringIO()):
        pv = cls(a, size, n_levels=levels, n_subflows=subflows, use_splitprior=True,
                 normalize_translation=128., normalize_scale=256.)
    hx = torch.nn.Sequential(
        Normalize_without_ldj(translation=128., scale=256.),
        DenseNet(a, input_size=size, n_inputs=size[0], n_outputs=a.n_context, depth=4, growth=32,
                 dropout_p=0.),
        torch.nn.Conv2d(a.n_context, a.n_context, kernel_size=2, stride=2, padding=0),
        DenseNet(a, input_size=size, n_inputs=a.n_context, n_outputs=a.n_context, depth=4,
                 growth=32, dropout_p=0.))
    qu = TemplateDistribution(
        transformations=[ReverseTransformation(Sigmoid())],
        distribution=Flow(a, size, n_levels=1, n_subflows=4 if full else 2, n_context=a.n_context,
                          use_splitprior=False, normalize_translation=0., normalize_scale=1.,
                          parametrize_inverse=True))
    m = DiscreteLowerboundModel(pv, qu, hx)
    # one training forward: ActNorm's data-dependent init on a batch of
    # pixels, power iterations (resflow: the Neumann estimator needs grads)
    m.train()
    x0 = torch.randint(0, 256, (16,) + tuple(size)).float()
    with contextlib.redirect_stdout(io.StringIO()):
        m(x0)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "lamb" in name or "geom_p" in name:
                continue  # the residual blocks' fixed Poisson / geometric settings
            e = torch.randn(p.shape, generator=g)
            sd = float(p.std()) if p.numel() > 1 else 0.0
            if name.endswith("kernel_orig"):
                p.add_(e / np.sqrt(p[0].numel()))  # the convexp constraint active
            elif name.endswith("translation") or name.endswith("log_scale"):
                p.add_(0.1 * e)
            elif sd > 0:
                p.add_(0.2 * sd * e)
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.add_(0.05 * e / np.sqrt(fan_in))
    m.eval()
    return m, levels


def exact_logdetgrad(self, x):
    """iResBlock._logdetgrad with the exact log|det(I + J_g)| (tiny inputs)."""
    import torch
    g = self.nnet(x)
    lds = []
    for b in range(x.shape[0]):
        xb = x[b:b + 1].detach()
        jac = torch.autograd.functional.jacobian(lambda v: self.nnet(v).reshape(-1), xb)
        jac = jac.reshape(xb.numel(), xb.numel()).double()
        lds.append(torch.linalg.slogdet(torch.eye(xb.numel(), dtype=torch.float64) + jac)[1])
    return g, torch.stack(lds).float().view(-1, 1)


class Feed:
    """Replaces sample_normal_standard: the queued arrays in order while armed."""

    def __init__(self):
        self.queue, self.armed = [], False

    def __call__(self, n_samples, size):
        import torch
        if not self.armed:
            return torch.randn((n_samples,) + tuple(size))
        x = self.queue.pop(0)
        assert tuple(x.shape) == (n_samples,) + tuple(size), (x.shape, n_samples, size)
        return torch.from_numpy(x.copy())


def run_case(model, args, tmp):
    import torch
    import h5py
    import convert_sylvester
    import convert_authors
    import models.distributions.diagonalgaussian as dg
    import models.distributions.standardgaussian as sg
    from models.transformations.iresnet import iresnet

    size = (3, 32, 32) if args.full else (3, 16, 16)
    m, levels = build_authors(model, size, args.full, args.seed)
    sd = {k: v.detach().cpu().numpy() for k, v in m.state_dict().items()}
    cfg, params, state = convert_sylvester.convert(sd, size[1], size[2])
    tight = args.tight and model == "resflow"
    if tight:  # both sides: power iteration and the inverse to (near) float resolution
        import models.transformations.iresnet.conv2d as c2
        cfg["resflow_sn_atol"] = cfg["resflow_sn_rtol"] = 1e-7
        cfg["resflow_sn_max_iter"] = 3000
        cfg["resflow_inverse_atol"] = cfg["resflow_inverse_rtol"] = 1e-12
        for mod in m.modules():
            if isinstance(mod, c2.InducedNormConv2d):
                mod.atol = mod.rtol = 1e-7
    ck = os.path.join(tmp, "ck-%s.h5" % model)
    convert_authors.write_checkpoint(ck, cfg, params, state)

    rng = np.random.default_rng(args.seed + 7)
    n, D = args.n, int(np.prod(size))
    x = rng.integers(0, 256, size=(n,) + size).astype(np.float32)
    v = x + rng.random((n,) + size).astype(np.float32)
    noise = rng.standard_normal((n, 4 * size[0], size[1] // 2, size[2] // 2)).astype(np.float32)
    # decoding: the top latent and one eps per split prior, in forward order
    split_level0 = cfg["split_level0"]
    c, h, w = 4 * size[0], size[1] // 2, size[2] // 2
    split_shapes = []
    for lv in range(levels - 1):
        if lv >= 1 or split_level0:
            split_shapes.append((n, c // 2, h, w))
            c //= 2
        c, h, w = 4 * c, h // 2, w // 2
    top = rng.standard_normal((n, c, h, w)).astype(np.float32)
    splits = [rng.standard_normal(s).astype(np.float32) for s in split_shapes]

    feed = Feed()
    saved = dg.sample_normal_standard, sg.sample_normal_standard, iresnet.iResBlock._logdetgrad
    saved_fp = iresnet.iResBlock._inverse_fixed_point.__defaults__
    if tight:
        iresnet.iResBlock._inverse_fixed_point.__defaults__ = (1e-12, 1e-12)
    dg.sample_normal_standard = sg.sample_normal_standard = feed
    iresnet.iResBlock._logdetgrad = exact_logdetgrad
    feed.armed = True
    decode = model != "sylvester-nogen"
    try:
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            theirs_lp = m.model_pv(torch.from_numpy(v), context=None).numpy()
            feed.queue = [noise]
            context = m.model_context(torch.from_numpy(x))
            u, log_qu = m.model_qu_x.sample(context, n_samples=n)
            theirs_lq = log_qu.numpy()
            theirs_elbo = (m.model_pv(torch.from_numpy(x) + u, context=None) - log_qu).numpy()
            if decode:  # sample() draws the top latent first, then the deepest split first
                feed.queue = [top] + splits[::-1]
                theirs_dec = m.model_pv.sample(context=None, n_samples=n)[0].numpy()
    finally:
        dg.sample_normal_standard, sg.sample_normal_standard, iresnet.iResBlock._logdetgrad = saved
        iresnet.iResBlock._inverse_fixed_point.__defaults__ = saved_fp

    inp, outp = os.path.join(tmp, "in-%s.h5" % model), os.path.join(tmp, "out-%s.h5" % model)
    with h5py.File(inp, "w") as f:
        f["v"], f["x"], f["noise"] = v, x, noise
        if decode:
            f["top_eps"] = top
            for k, s in enumerate(splits):
                f["split_eps_%d" % k] = s
    exe = os.path.join(args.build, "tools", "fxp-crosscheck")
    cmd = [exe, ck, inp, outp] + (["--exact-logdet"] if model == "resflow" else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        print("%s: fxp-crosscheck failed: %s" % (model, r.stderr.strip()))
        return False
    with h5py.File(outp, "r") as f:
        ours_lp, ours_elbo, ours_lq = f["log_p"][:], f["elbo"][:], f["log_q"][:]
        ours_dec = f["decoded"][:] if decode else None
    bpd = 1.0 / (D * np.log(2))
    d_lp = np.max(np.abs(ours_lp - theirs_lp)) * bpd
    d_elbo = np.max(np.abs(ours_elbo - theirs_elbo)) * bpd
    d_lq = np.max(np.abs(ours_lq - theirs_lq)) * bpd
    d_dec = np.max(np.abs(ours_dec - theirs_dec)) if decode else 0.0
    ok = d_lp < 1e-4 and d_elbo < 1e-4 and d_lq < 1e-4 and d_dec < 1e-3 * 256
    print("%-17s log p(v) %8.4f bpd, |diff| %.2e bpd; ELBO |diff| %.2e bpd; log q |diff| %.2e bpd;"
          " decoded max |diff| %s  %s" %
          (model, -np.mean(theirs_lp) * bpd, d_lp, d_elbo, d_lq,
           "%.2e (pixel units)" % d_dec if decode else "n/a (no inverse in their code)",
           "ok" if ok else "FAILED"))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--authors", default=os.environ.get("FXP_AUTHORS_DIR", ""),
                    help="checkout of the authors' code (default: $FXP_AUTHORS_DIR)")
    ap.add_argument("--build", default="build", help="meson build directory")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--full", action="store_true", help="the paper's CIFAR10 size (slow)")
    ap.add_argument("--n", type=int, default=4, help="images per comparison")
    ap.add_argument("--tight", action="store_true",
                    help="resflow: power iteration and inverse tolerances near float resolution "
                         "on both sides (separates their tolerances from the maps)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.authors or not os.path.isdir(os.path.join(args.authors, "models")):
        print("authors_sylvester.py: the authors' code is not available (--authors DIR); skipped")
        return 77
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import h5py  # noqa: F401
        import torch._six
        torch._six.container_abcs = collections.abc  # their iresnet/conv2d.py imports it
    except ImportError as e:
        print("authors_sylvester.py: %s; skipped" % e)
        return 77
    sys.path.insert(0, os.path.abspath(args.authors))
    os.chdir(os.path.abspath(args.authors))
    args.build = os.path.abspath(os.path.join(os.path.dirname(HERE), "..", args.build)) \
        if not os.path.isabs(args.build) else args.build
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            ok &= run_case(model, args, tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
