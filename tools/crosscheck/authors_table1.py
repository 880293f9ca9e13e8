#!/usr/bin/env python3
"""Cross-check our Table-1 image model against the authors' PyTorch code.

For each mixing layer of Table 1 (1x1, emerging, woodbury, convexp) this
builds the authors' DiscreteLowerboundModel (main_experiment.py's
construction, at a reduced size unless --full), randomises every parameter
(the zero-initialised heads too, so no layer is the identity), converts its
state_dict with tools/convert_authors.py, and compares in evaluation mode:
  - log p(v) of the same continuous inputs v (bits/dim difference);
  - the ELBO and log q(u|x) of the same images with the same dequantisation
    noise (their sampler is fed our noise);
  - samples decoded from the same base noise (top latent and split priors).
Our side runs build/tools/fxp-crosscheck.  Exit 0 if every difference is
within tolerance (1e-4 bits/dim; decoded samples 1e-3 relative to the pixel
range), 1 otherwise, 77 if the authors' code or torch is absent.

    python3 tools/crosscheck/authors_table1.py --authors DIR [--build build]
        [--mixing 1x1 emerging woodbury convexp] [--full] [--n 4]

DIR is a checkout of github.com/ehoogeboom/convolution_exponential_and_sylvester
(its emerging inverse needs Debian's cython3).
"""
import argparse
import collections.abc
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


def build_authors(mixing, size, full, seed):
    import torch
    from models.model import DiscreteLowerboundModel
    from models.distributions.flow import Flow
    from models.architectures.densenet import DenseNet
    from models.transformations.normalize import Normalize_without_ldj
    from models.distributions import TemplateDistribution
    from models.transformations.sigmoid import Sigmoid
    from models.transformations import ReverseTransformation

    class Args:
        pass
    a = Args()
    a.n_scales, a.n_densenets, a.dropout_p = 1, 1, 0.0
    a.use_gated_conv, a.mixing, a.convexp_coeff = True, mixing, 0.95
    a.n_context = 32 if full else 8
    a.n_intermediate_channels = 64 if full else 12
    a.densenet_depth = 8 if full else 2
    a.densenet_growth = (64 if mixing == "1x1" else 63) if full else 6
    levels, subflows, deq_subflows = (2, 10, 4) if full else (2, 2, 2)
    torch.manual_seed(seed)
    np.random.seed(seed)
    pv = Flow(a, size, n_levels=levels, n_subflows=subflows, use_splitprior=True, n_context=None,
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
        distribution=Flow(a, size, n_levels=1, n_subflows=deq_subflows, n_context=a.n_context,
                          use_splitprior=False, normalize_translation=0., normalize_scale=1.,
                          parametrize_inverse=True))
    model = DiscreteLowerboundModel(pv, qu, hx)
    # one training forward runs the spectral-norm power iteration (as training
    # would) so that u, v are not their random initial draws
    model.train()
    with torch.no_grad():
        model(torch.randint(0, 256, (2,) + tuple(size)).float())
    # randomise every parameter, including the zero-initialised heads, biases
    # and base, relative to its own scale so that the model stays in a sane
    # regime at any size: a tensor with spread gets 20% of its std as noise,
    # an all-zero one N(0, 0.05^2) / sqrt(fan-in)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            e = torch.randn(p.shape, generator=g)
            sd = float(p.std()) if p.numel() > 1 else 0.0
            if name.endswith("kernel_orig"):
                # large enough that the spectral normalisation is active
                p.add_(e / np.sqrt(p[0].numel()))
            elif sd > 0:
                p.add_(0.2 * sd * e)
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.add_(0.05 * e / np.sqrt(fan_in))
    model.eval()
    return model, (levels, subflows)


class Feed:
    """Replaces sample_normal_standard: returns the queued arrays in order
    while armed, and fresh torch.randn draws otherwise."""

    def __init__(self):
        self.queue = []
        self.armed = False

    def __call__(self, n_samples, size):
        import torch
        if not self.armed:
            return torch.randn((n_samples,) + tuple(size))
        if not self.queue:
            raise RuntimeError("noise queue empty")
        x = self.queue.pop(0)
        assert tuple(x.shape) == (n_samples,) + tuple(size), (x.shape, n_samples, size)
        return torch.from_numpy(x.copy())


def run_case(mixing, args, tmp):
    import torch
    import h5py
    import convert_authors
    import models.distributions.diagonalgaussian as dg
    import models.distributions.standardgaussian as sg

    size = (3, 32, 32) if args.full else (3, 16, 16)
    model, (levels, subflows) = build_authors(mixing, size, args.full, args.seed)
    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    cfg, params, state = convert_authors.convert(sd, size[1], size[2])
    ck = os.path.join(tmp, "ck-%s.h5" % mixing)
    convert_authors.write_checkpoint(ck, cfg, params, state)

    rng = np.random.default_rng(args.seed + 7)
    n, D = args.n, int(np.prod(size))
    x = rng.integers(0, 256, size=(n,) + size).astype(np.float32)
    v = x + rng.random((n,) + size).astype(np.float32)
    qshape = (n, 4 * size[0], size[1] // 2, size[2] // 2)
    noise = rng.standard_normal(qshape).astype(np.float32)
    # decoding: the top latent of the prior and one eps per split prior
    top_c = size[0] * 4
    h, w = size[1] // 2, size[2] // 2
    split_shapes = []
    for _ in range(levels - 1):
        split_shapes.append((n, top_c // 2, h, w))
        top_c, h, w = top_c // 2 * 4, h // 2, w // 2
    top = rng.standard_normal((n, top_c, h, w)).astype(np.float32)
    splits = [rng.standard_normal(s).astype(np.float32) for s in split_shapes]

    feed = Feed()
    saved = dg.sample_normal_standard, sg.sample_normal_standard
    dg.sample_normal_standard = feed
    sg.sample_normal_standard = feed
    feed.armed = True
    with torch.no_grad():
        theirs_lp = model.model_pv(torch.from_numpy(v), context=None).numpy()
        feed.queue = [noise]
        context = model.model_context(torch.from_numpy(x))
        u, log_qu = model.model_qu_x.sample(context, n_samples=n)
        feed.queue = []
        theirs_lq = log_qu.numpy()
        theirs_elbo = (model.model_pv(torch.from_numpy(x) + u, context=None) - log_qu).numpy()
        # Flow.sample draws the top latent first, then the deepest split first
        feed.queue = [top] + splits[::-1]
        theirs_dec = model.model_pv.sample(context=None, n_samples=n)[0].numpy()
    dg.sample_normal_standard, sg.sample_normal_standard = saved

    inp, outp = os.path.join(tmp, "in-%s.h5" % mixing), os.path.join(tmp, "out-%s.h5" % mixing)
    with h5py.File(inp, "w") as f:
        f["v"], f["x"], f["noise"], f["top_eps"] = v, x, noise, top
        for k, s in enumerate(splits):
            f["split_eps_%d" % k] = s
    exe = os.path.join(args.build, "tools", "fxp-crosscheck")
    r = subprocess.run([exe, ck, inp, outp], capture_output=True, text=True)
    if r.returncode:
        print("%s: fxp-crosscheck failed: %s" % (mixing, r.stderr.strip()))
        return False
    with h5py.File(outp, "r") as f:
        ours_lp, ours_elbo, ours_lq = f["log_p"][:], f["elbo"][:], f["log_q"][:]
        ours_dec = f["decoded"][:]
    bpd = 1.0 / (D * np.log(2))
    d_lp = np.max(np.abs(ours_lp - theirs_lp)) * bpd
    d_elbo = np.max(np.abs(ours_elbo - theirs_elbo)) * bpd
    d_lq = np.max(np.abs(ours_lq - theirs_lq)) * bpd
    d_dec = np.max(np.abs(ours_dec - theirs_dec))
    ok = d_lp < 1e-4 and d_elbo < 1e-4 and d_lq < 1e-4 and d_dec < 1e-3 * 256
    print("%-9s log p(v) %8.4f bpd, |diff| %.2e bpd; ELBO |diff| %.2e bpd; log q |diff| %.2e bpd;"
          " decoded max |diff| %.2e (pixel units)  %s" %
          (mixing, -np.mean(theirs_lp) * bpd, d_lp, d_elbo, d_lq, d_dec, "ok" if ok else "FAILED"))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--authors", default=os.environ.get("FXP_AUTHORS_DIR", ""),
                    help="checkout of the authors' code (default: $FXP_AUTHORS_DIR)")
    ap.add_argument("--build", default="build", help="meson build directory")
    ap.add_argument("--mixing", nargs="+", default=["1x1", "emerging", "woodbury", "convexp"])
    ap.add_argument("--full", action="store_true", help="the paper's CIFAR10 size (slow)")
    ap.add_argument("--n", type=int, default=4, help="images per comparison")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.authors or not os.path.isdir(os.path.join(args.authors, "models")):
        print("authors_table1.py: the authors' code is not available (--authors DIR); skipped")
        return 77
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import h5py  # noqa: F401
        import torch._six
        torch._six.container_abcs = collections.abc
    except ImportError as e:
        print("authors_table1.py: %s; skipped" % e)
        return 77
    sys.path.insert(0, os.path.abspath(args.authors))
    os.chdir(os.path.abspath(args.authors))  # pyximport builds the emerging inverse in place
    args.build = os.path.abspath(os.path.join(os.path.dirname(HERE), "..", args.build)) \
        if not os.path.isabs(args.build) else args.build
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for mixing in args.mixing:
            ok &= run_case(mixing, args, tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
