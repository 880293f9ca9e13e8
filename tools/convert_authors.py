#!/usr/bin/env python3
"""Convert a state_dict of the authors' Table-1 model into a libflowexp checkpoint.

The authors' code (github.com/ehoogeboom/convolution_exponential_and_sylvester,
main_experiment.py) trains a DiscreteLowerboundModel(model_pv=Flow(...),
model_qu_x=TemplateDistribution([Reverse(Sigmoid)], Flow(...)),
model_context=Sequential(Normalize, DenseNet, Conv2d 2x2/2, DenseNet)).
This script maps its state_dict onto the parameter names of our image model
(include/flowexp/imageflow.h, docs/checkpoints.md) and writes a checkpoint
that `flowexp eval|sample` and fxp_checkpoint_load read:

    python3 tools/convert_authors.py MODEL.pt OUT.h5 [--height 32 --width 32]

MODEL.pt is a state_dict (torch.save(model.state_dict(), ...)) or a whole
pickled model (then the authors' code must be importable: --authors DIR).
The architecture (mixing layer, levels, subflows, DenseNet sizes, gating,
dequantisation, context size) is read off the tensor names and shapes; the
image height and width only show in some mixing layers' parameters, so give
them for 1x1 and emerging models of non-32x32 images.  Their spectral
normalisation divides the kernel by (factor + 1e-5) where ours divides by
the factor alone: converted checkpoints set convexp_sn_eps = 1e-5 to
compute exactly their function.  The Normalize(0, 1) layer of their dequantiser flow is the identity and has
no counterpart.  Needs Debian's python3-torch, python3-h5py, python3-numpy.
"""
import argparse
import re
import sys

import numpy as np

FORMAT = "libflowexp-checkpoint"
FORMAT_VERSION = 1

MIXING_KEYS = ("1x1", "emerging", "woodbury", "convexp")


class ConvertError(Exception):
    pass


def _coupling(sd, p, q, out, gated):
    """A Coupling's DenseInResidualNet: their prefix p ('...nn.') -> our q."""
    out[q + "/nn/first/w"] = sd[p + "first.weight"]
    out[q + "/nn/first/b"] = sd[p + "first.bias"]
    d = 0
    while p + "dense_nns.%d.nn.0.nn.0.weight" % d in sd:
        dp, dq = p + "dense_nns.%d.nn." % d, q + "/nn/dense/%d" % d
        l = 0
        while dp + "%d.nn.0.weight" % l in sd:
            out[dq + "/layer/%d/w1" % l] = sd[dp + "%d.nn.0.weight" % l]
            out[dq + "/layer/%d/b1" % l] = sd[dp + "%d.nn.0.bias" % l]
            out[dq + "/layer/%d/w3" % l] = sd[dp + "%d.nn.2.weight" % l]
            out[dq + "/layer/%d/b3" % l] = sd[dp + "%d.nn.2.bias" % l]
            l += 1
        last = dp + "%d.conv." % l if gated else dp + "%d." % l
        out[dq + "/out/w"] = sd[last + "weight"]
        out[dq + "/out/b"] = sd[last + "bias"]
        d += 1
    out[q + "/nn/last/w"] = sd[p + "last.weight"]
    out[q + "/nn/last/b"] = sd[p + "last.bias"]
    return d


def _densenet(sd, p, q, out, gated):
    """A plain DenseNet (context network): p = '...nn.'."""
    l = 0
    while p + "%d.nn.0.weight" % l in sd:
        out[q + "/layer/%d/w1" % l] = sd[p + "%d.nn.0.weight" % l]
        out[q + "/layer/%d/b1" % l] = sd[p + "%d.nn.0.bias" % l]
        out[q + "/layer/%d/w3" % l] = sd[p + "%d.nn.2.weight" % l]
        out[q + "/layer/%d/b3" % l] = sd[p + "%d.nn.2.bias" % l]
        l += 1
    last = p + "%d.conv." % l if gated else p + "%d." % l
    out[q + "/out/w"] = sd[last + "weight"]
    out[q + "/out/b"] = sd[last + "bias"]
    return l


def _mixing(sd, p, q, kind, out, state):
    """One mixing layer (prefix p ends with '.') to our layer q."""
    if kind == "convexp":
        out[q + "/kernel"] = sd[p + "kernel_orig"]
        out[q + "/pre_bias"] = sd[p + "pre_transform_bias"]
        out[q + "/post_bias"] = sd[p + "post_transform_bias"]
        if p + "conv1x1.W" in sd:
            out[q + "/mixer"] = sd[p + "conv1x1.W"]
        else:
            out[q + "/mixer"] = sd[p + "conv1x1.V"]
        state[q + "/u"] = sd[p + "kernel_u"].reshape(-1)
        state[q + "/v"] = sd[p + "kernel_v"].reshape(-1)
    elif kind == "1x1":
        out[q + "/weight"] = sd[p + "W"]
    elif kind == "emerging":
        out[q + "/conv1x1/weight"] = sd[p + "transformations.0.W"]
        out[q + "/ar0/weight"] = sd[p + "transformations.1.weight"]
        out[q + "/ar0/bias"] = sd[p + "transformations.1.bias"]
        out[q + "/ar1/weight"] = sd[p + "transformations.3.weight"]
        out[q + "/ar1/bias"] = sd[p + "transformations.3.bias"]
    elif kind == "woodbury":
        out[q + "/conv1x1/weight"] = sd[p + "conv1x1.W"]
        out[q + "/U"] = sd[p + "woodbury_spatial.U"]
        out[q + "/V"] = sd[p + "woodbury_spatial.V"]
    else:
        raise ConvertError("unknown mixing " + kind)


def detect_mixing(sd, p):
    if p + "kernel_orig" in sd:
        return "convexp"
    if p + "transformations.1.mask" in sd:
        return "emerging"
    if p + "woodbury_spatial.U" in sd:
        return "woodbury"
    if p + "W" in sd:
        return "1x1"
    raise ConvertError("no mixing layer at " + p)


def _indices(sd, prefix):
    idx = set()
    for k in sd:
        m = re.match(re.escape(prefix) + r"(\d+)\.", k)
        if m:
            idx.add(int(m.group(1)))
    return sorted(idx)


def convert(sd, height=None, width=None, convexp_coeff=0.95):
    """Map the state_dict sd (name -> numpy array) to (config, params, state).
    convexp_coeff is their --convexp_coeff (not in the state_dict; default 0.95)."""
    sd = {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}
    params, state = {}, {}
    pv = "model_pv.transformations."
    if pv + "0.translation" not in sd:
        raise ConvertError("not a Table-1 model: no model_pv.transformations.0 (Normalize)")
    kind = detect_mixing(sd, pv + "2.")
    first = sd[pv + "3.nn.first.weight"]
    c_sq = 2 * first.shape[1]
    if c_sq % 4:
        raise ConvertError("first coupling sees %d channels: not a squeezed image" % c_sq)
    channels = c_sq // 4
    gated = any(re.match(re.escape(pv) + r"\d+\.nn\.dense_nns\.0\.nn\.\d+\.conv\.weight", k)
                for k in sd)
    idx = [i for i in _indices(sd, pv) if i >= 2]
    couplings, splits = [], []
    for i in range(2, max(idx) + 2):
        if pv + "%d.nn.first.weight" % i in sd:
            couplings.append(i)
        elif pv + "%d.transform.nn.first.weight" % i in sd:
            splits.append(i)
    levels = len(splits) + 1
    if len(couplings) % levels:
        raise ConvertError("%d couplings over %d levels" % (len(couplings), levels))
    subflows = len(couplings) // levels
    # every index: normalize 0, squeeze 1, mixing 2, then per level
    # subflows x (coupling, mixing) and (split, squeeze) between levels
    i = 2
    _mixing(sd, pv + "2.", "pv/flow/2/mixing", kind, params, state)
    i = 3
    depth = None
    for level in range(levels):
        for s in range(subflows):
            n_dense = _coupling(sd, pv + "%d.nn." % i, "pv/flow/%d/coupling" % i, params, gated)
            _mixing(sd, pv + "%d." % (i + 1), "pv/flow/%d/mixing" % (i + 1), kind, params, state)
            i += 2
        if level < levels - 1:
            if pv + "%d.transform.nn.first.weight" % i not in sd:
                raise ConvertError("expected a split prior at %s%d" % (pv, i))
            _coupling(sd, pv + "%d.transform.nn." % i, "pv/flow/%d/split/coupling" % i, params,
                      gated)
            i += 2
    params["pv/base/mean"] = sd["model_pv.base.mu"]
    params["pv/base/log_sigma"] = sd["model_pv.base.log_sigma"]
    growth = sd[pv + "3.nn.dense_nns.0.nn.0.nn.2.weight"].shape[0]
    intermediate = first.shape[0]
    depth = len([k for k in sd if re.match(re.escape(pv) + r"3\.nn\.dense_nns\.0\.nn\.\d+\.nn\.0\.weight$", k)])

    cfg = {"family": "image", "kind": "flow", "mixing": kind, "channels": channels,
           "levels": levels, "subflows": subflows, "splitprior": 1 if splits else 0,
           "depth": depth, "growth": growth, "intermediate": intermediate,
           "gated": 1 if gated else 0, "n_densenets": n_dense,
           "normalize_shift": float(np.asarray(sd[pv + "0.translation"]).reshape(-1)[0]),
           "normalize_scale": float(np.exp(np.asarray(sd[pv + "0.log_scale"]).reshape(-1)[0]))}
    if kind == "convexp":
        cfg["convexp_coeff"] = convexp_coeff
        cfg["convexp_sn_eps"] = 1e-5  # their W / (factor + 1e-5)
        pre = sd[pv + "2.pre_transform_bias"]
        height, width = 2 * pre.shape[2], 2 * pre.shape[3]
    elif kind == "woodbury":
        hw = sd[pv + "2.woodbury_spatial.U"].shape[0]
        cfg["woodbury_rank"] = sd[pv + "2.woodbury_spatial.U"].shape[1]
        if height is None:
            side = int(round(np.sqrt(hw)))
            height = width = 2 * side
        if (height // 2) * (width // 2) != hw:
            raise ConvertError("woodbury over %d positions does not fit %dx%d" % (hw, height, width))
    cfg["height"] = height or 32
    cfg["width"] = width or 32

    convert_dequantizer(sd, cfg, params, state, kind, gated)
    return cfg, params, state


def convert_dequantizer(sd, cfg, params, state, kind, gated):
    """The dequantiser of a DiscreteLowerboundModel (their Flow over u with a
    context network) into cfg / params / state; uniform if there is none."""
    qd = "model_qu_x.distribution.transformations."
    if qd + "3.nn.first.weight" in sd:
        cfg["dequantization"] = "variational"
        qidx = _indices(sd, qd)
        qcoup = [j for j in qidx if qd + "%d.nn.first.weight" % j in sd]
        cfg["deq_subflows"] = len(qcoup)
        # theirs: 0 Normalize(0,1), 1 squeeze, 2 reversed mixing, 3 coupling, ...
        for j in range(2, 2 + 2 * len(qcoup) + 1):
            ours = "qu/flow/%d" % (j - 1)
            if j % 2 == 0:
                _mixing(sd, qd + "%d.transform." % j, ours + "/mixing", kind, params, state)
            else:
                _coupling(sd, qd + "%d.nn." % j, ours + "/coupling", params, gated)
        params["qu/base/mean"] = sd["model_qu_x.distribution.base.mu"]
        params["qu/base/log_sigma"] = sd["model_qu_x.distribution.base.log_sigma"]
        cfg["context_channels"] = sd["model_context.2.weight"].shape[0]
        cfg["context_depth"] = _densenet(sd, "model_context.1.nn.", "qu/context/dense/0", params,
                                         gated)
        cfg["context_growth"] = sd["model_context.1.nn.0.nn.2.weight"].shape[0]
        params["qu/context/down/w"] = sd["model_context.2.weight"]
        params["qu/context/down/b"] = sd["model_context.2.bias"]
        _densenet(sd, "model_context.3.nn.", "qu/context/dense/1", params, gated)
    else:
        cfg["dequantization"] = "uniform"


def write_checkpoint(path, cfg, params, state):
    """Write our checkpoint layout (include/flowexp/checkpoint.h) with h5py."""
    import h5py
    import os
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.attrs["library_version"] = "convert_authors.py"
            for section, entries in (("params", params), ("state", state)):
                g = f.create_group(section)
                for name, value in entries.items():
                    g.create_dataset(name, data=np.ascontiguousarray(value, dtype=np.float32))
            c = f.create_group("config", track_order=True)
            for k, v in cfg.items():
                c.attrs[k] = str(v)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_state_dict(path, authors=None):
    import torch
    if authors:
        sys.path.insert(0, authors)
    obj = torch.load(path, map_location="cpu")
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    return {k: v.detach().cpu().numpy() for k, v in obj.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="state_dict or pickled DiscreteLowerboundModel (.pt)")
    ap.add_argument("out", help="checkpoint to write (HDF5)")
    ap.add_argument("--height", type=int, help="image height (if the parameters do not show it)")
    ap.add_argument("--width", type=int, help="image width")
    ap.add_argument("--authors", help="directory of the authors' code (for pickled models)")
    ap.add_argument("--convexp-coeff", type=float, default=0.95,
                    help="their --convexp_coeff (default 0.95, their settings.py)")
    a = ap.parse_args()
    try:
        sd = load_state_dict(a.model, a.authors)
        cfg, params, state = convert(sd, a.height, a.width, a.convexp_coeff)
    except (ConvertError, KeyError) as e:
        print("convert_authors.py: %s: %s" % (a.model, e), file=sys.stderr)
        return 1
    write_checkpoint(a.out, cfg, params, state)
    print("wrote %s: %s mixing, %d levels x %d subflows, %d parameters tensors" %
          (a.out, cfg["mixing"], cfg["levels"], cfg["subflows"], len(params)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
