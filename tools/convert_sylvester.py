#!/usr/bin/env python3
"""Convert a state_dict of the authors' Tables 2-3 models into a libflowexp checkpoint.

The authors' experiment_sylvester_network.py trains a
DiscreteLowerboundModel whose model_pv is a SylvesterModel (GeneralizedSylvester
layers), an Ablation (AblationNoBasis / AblationWithoutGeneralization), a
ResidualFlowModel (iResBlock) or a CouplingModel (Conv1x1 + PlainCoupling),
with a uniform or a flow dequantiser.  This script maps such a state_dict
onto the parameter names of our image models (include/flowexp/imageflow.h,
sylvester.h, residual.h; docs/sylvester.md lists the mapping) and writes a
checkpoint that `flowexp eval|sample` and fxp_checkpoint_load read:

    python3 tools/convert_sylvester.py MODEL.pt OUT.h5 [--height 32 --width 32]

Their transformations.<i> is our pv/flow/<i> (the same layer order).  The
model kind, levels, subflows, split pattern and sizes are read off the
tensor names and shapes; the image size shows in the spectral-norm vectors
of the Sylvester and residual models, and must be given (--height/--width,
default 32) for the coupling model.  Their spectral normalisations divide by
(factor + 1e-5): converted Sylvester checkpoints set convexp_sn_eps = 1e-5.
Their --convexp_coeff and --lipschitz_sylvester are not in the state_dict
(defaults 0.95 and 1.5).  Needs Debian's python3-torch, python3-h5py,
python3-numpy.
"""
import argparse
import re
import sys

import numpy as np

import convert_authors as ca

PV = "model_pv.transformations."
HEADS = ("linear_t1", "linear_s1", "linear_t2", "linear_s2")


class ConvertError(Exception):
    pass


def _flat(a):
    return np.asarray(a).reshape(-1)


def _sn_conv(sd, p, q, out, state):
    """A MaskedConv2d under MaskedSpectralNormConv (their p = '...nn.0.')."""
    out[q + "/weight"] = sd[p + "weight_orig"]
    out[q + "/bias"] = sd[p + "bias"]
    state[q + "/weight_u"] = _flat(sd[p + "weight_u"])
    state[q + "/weight_v"] = _flat(sd[p + "weight_v"])


def _layer_kind(sd, i):
    """What transformations.<i> of model_pv is (None for parameter-free layers)."""
    p = PV + "%d." % i
    if p + "translation" in sd:
        return "actnorm"
    if p + "transform.nn.first.weight" in sd:
        return "split"
    if p + "nn.0.weight_orig" in sd:
        return "sylvester" if p + "kernel_orig" in sd else "sylvester-nobasis"
    if p + "d" in sd and p + "diag1" in sd:
        return "sylvester-nogen"
    if p + "iresblock_module.nnet.0.weight" in sd:
        return "resflow"
    if p + "W" in sd:
        return "1x1"
    if p + "nn.0.weight" in sd:
        return "coupling"
    return None


def convert(sd, height=None, width=None, convexp_coeff=0.95, lipschitz=1.5):
    """Map the state_dict sd (name -> numpy array) to (config, params, state)."""
    sd = {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}
    params, state = {}, {}
    if PV + "1.translation" not in sd:
        raise ConvertError("not a Tables 2-3 model: no ActNorm at model_pv.transformations.1")
    idx = ca._indices(sd, PV)
    last = max(idx)
    kinds = {i: _layer_kind(sd, i) for i in range(last + 2)}
    blocks = [k for k in kinds.values() if k in ("sylvester", "sylvester-nobasis",
                                                  "sylvester-nogen", "resflow", "coupling")]
    if not blocks or len(set(blocks)) != 1:
        raise ConvertError("cannot tell the model kind (blocks: %s)" % sorted(set(blocks)))
    kind = blocks[0]
    # levels: runs of actnorms with one channel count; splits between them
    channels, level_of, splits = [], [], []
    for i in range(last + 1):
        if kinds[i] == "actnorm":
            c = sd[PV + "%d.translation" % i].shape[0]
            if not channels or c != channels[-1][0]:
                channels.append([c, 0])
            channels[-1][1] += 1
        elif kinds[i] == "split":
            splits.append(len(channels) - 1)
    levels = len(channels)
    subflows = channels[0][1]
    if any(n != subflows for _, n in channels):
        raise ConvertError("levels hold %s subflows" % [n for _, n in channels])
    c0 = channels[0][0]
    if c0 % 4:
        raise ConvertError("first level has %d channels: not a squeezed image" % c0)
    cfg = {"family": "image", "kind": "coupling" if kind == "coupling" else kind,
           "channels": c0 // 4, "levels": levels, "subflows": subflows,
           "splitprior": 1 if splits else 0, "split_level0": 1 if 0 in splits else 0,
           "mixing": "1x1", "gated": 0, "normalize_shift": 128.0, "normalize_scale": 256.0}

    for i in range(last + 1):
        p, q = PV + "%d." % i, "pv/flow/%d" % i
        k = kinds[i]
        if k == "actnorm":
            params[q + "/actnorm/translation"] = sd[p + "translation"]
            params[q + "/actnorm/log_scale"] = sd[p + "log_scale"]
            state[q + "/actnorm/initialized"] = _flat(sd[p + "initialized"]).astype(np.float32)
        elif k == "split":
            ca._coupling(sd, p + "transform.nn.", q + "/split/coupling", params, False)
        elif k in ("sylvester", "sylvester-nobasis", "sylvester-nogen"):
            s = q + "/sylvester"
            if p + "kernel_orig" in sd:
                params[s + "/kernel"] = sd[p + "kernel_orig"]
                state[s + "/kernel_u"] = _flat(sd[p + "kernel_u"])
                state[s + "/kernel_v"] = _flat(sd[p + "kernel_v"])
                params[s + "/conv1x1/V"] = sd[p + "conv1x1.V"]
            if k == "sylvester-nogen":
                for leaf in ("d", "diag1", "diag2", "b"):
                    params[s + "/" + leaf] = sd[p + leaf]
            else:
                _sn_conv(sd, p + "nn.0.", s + "/nn/0", params, state)
                _sn_conv(sd, p + "nn.2.", s + "/nn/2", params, state)
                for h in HEADS:
                    _sn_conv(sd, p + h + ".", s + "/" + h, params, state)
        elif k == "resflow":
            r = p + "iresblock_module.nnet."
            for j in (0, 2, 4):
                params[q + "/resblock/nnet/%d/weight" % j] = sd[r + "%d.weight" % j]
                params[q + "/resblock/nnet/%d/bias" % j] = sd[r + "%d.bias" % j]
                state[q + "/resblock/nnet/%d/u" % j] = _flat(sd[r + "%d.u" % j])
                state[q + "/resblock/nnet/%d/v" % j] = _flat(sd[r + "%d.v" % j])
            for j in (1, 3):
                params[q + "/resblock/nnet/%d/beta" % j] = _flat(sd[r + "%d.beta" % j])
        elif k == "1x1":
            params[q + "/mixing/weight"] = sd[p + "W"]
        elif k == "coupling":
            for j, (w, b) in zip((0, 2, 4), (("w1", "b1"), ("w2", "b2"), ("w3", "b3"))):
                params[q + "/coupling/nn/" + w] = sd[p + "nn.%d.weight" % j]
                params[q + "/coupling/nn/" + b] = sd[p + "nn.%d.bias" % j]
    params["pv/base/mean"] = sd["model_pv.base.mu"]
    params["pv/base/log_sigma"] = sd["model_pv.base.log_sigma"]

    # sizes: the hidden width, the split priors' DenseNets, the image size
    first = next(i for i in range(last + 1) if kinds[i] == kind)
    p = PV + "%d." % first
    if kind in ("sylvester", "sylvester-nobasis"):
        cfg["hidden"] = sd[p + "nn.0.weight_orig"].shape[0]
        hw = sd[p + "nn.0.weight_v"].size // c0
    elif kind == "resflow":
        cfg["hidden"] = sd[p + "iresblock_module.nnet.0.weight"].shape[0]
        hw = sd[p + "iresblock_module.nnet.0.v"].size // c0
    elif kind == "coupling":
        cfg["hidden"] = sd[p + "nn.0.weight"].shape[0]
        hw = None
    else:
        hw = sd[p + "kernel_v"].size // c0
    if hw is not None:
        side = int(round(np.sqrt(hw)))
        if side * side != hw:
            raise ConvertError("level 0 has %d positions: give --height / --width" % hw)
        height, width = 2 * side, 2 * side
    cfg["height"], cfg["width"] = height or 32, width or 32
    dn = None
    for i in range(last + 1):
        if kinds[i] == "split":
            dn = PV + "%d.transform.nn." % i
            break
    if dn is None and "model_qu_x.distribution.transformations.3.nn.first.weight" in sd:
        dn = "model_qu_x.distribution.transformations.3.nn."
    if dn is not None:
        cfg["intermediate"] = sd[dn + "first.weight"].shape[0]
        cfg["growth"] = sd[dn + "dense_nns.0.nn.0.nn.2.weight"].shape[0]
        cfg["depth"] = len([k for k in sd if re.match(re.escape(dn) +
                                                       r"dense_nns\.0\.nn\.\d+\.nn\.0\.weight$", k)])
        nd = 0
        while any(k.startswith(dn + "dense_nns.%d." % nd) for k in sd):
            nd += 1
        cfg["n_densenets"] = nd
    if kind in ("sylvester", "sylvester-nobasis", "sylvester-nogen"):
        cfg["lipschitz"] = lipschitz
        cfg["convexp_coeff"] = convexp_coeff
        cfg["convexp_sn_eps"] = 1e-5  # their W / (factor + 1e-5)
        terms = 10 if kind == "sylvester-nogen" else (9, 20)
        cfg["convexp_terms_train"], cfg["convexp_terms_eval"] = (terms, terms) \
            if isinstance(terms, int) else terms
        cfg["sylvester_atol"] = 1e-6 if kind == "sylvester-nobasis" else 1e-4
    qd = "model_qu_x.distribution.transformations."
    qmix = ca.detect_mixing(sd, qd + "2.transform.") if qd + "3.nn.first.weight" in sd else "1x1"
    cfg["mixing"] = qmix
    ca.convert_dequantizer(sd, cfg, params, state, qmix, False)
    return cfg, params, state


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="state_dict or pickled DiscreteLowerboundModel (.pt)")
    ap.add_argument("out", help="checkpoint to write (HDF5)")
    ap.add_argument("--height", type=int, help="image height (coupling models)")
    ap.add_argument("--width", type=int, help="image width (coupling models)")
    ap.add_argument("--authors", help="directory of the authors' code (for pickled models)")
    ap.add_argument("--convexp-coeff", type=float, default=0.95,
                    help="their --convexp_coeff (default 0.95)")
    ap.add_argument("--lipschitz", type=float, default=1.5,
                    help="their --lipschitz_sylvester (default 1.5)")
    a = ap.parse_args()
    try:
        sd = ca.load_state_dict(a.model, a.authors)
        cfg, params, state = convert(sd, a.height, a.width, a.convexp_coeff, a.lipschitz)
    except (ConvertError, ca.ConvertError, KeyError, StopIteration) as e:
        print("convert_sylvester.py: %s: %s" % (a.model, e), file=sys.stderr)
        return 1
    ca.write_checkpoint(a.out, cfg, params, state)
    print("wrote %s: %s, %d levels x %d subflows, %s dequantization, %d parameter tensors" %
          (a.out, cfg["kind"], cfg["levels"], cfg["subflows"], cfg["dequantization"],
           len(params)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
