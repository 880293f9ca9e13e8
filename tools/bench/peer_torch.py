#!/usr/bin/python3
"""The PyTorch peer of libflowexp's exponentials, timed: what a user would
run instead of the library.  tools/bench/compare_peer.py runs it beside
bench_expm and reports speed ratios.

    /usr/bin/python3 tools/bench/peer_torch.py [--threads 1 2] [--quick]
        [--backends mkldnn native] [--env tuned|default] [--json FILE] [--no-check]

Cases (the same as bench_expm's):
  conv_exp fwd / fwd+bwd / inverse   exp(M) x for a 3x3 convolution M (C -> C,
                                     zero padding), truncated after 6 terms
                                     (inverse: exp(-M), 13 terms); shapes
                                     B x C x H x W in SHAPES
  graph_conv_exp fwd+bwd             exp(M) x for the graph convolution
                                     M X = X t0 + A X t1 (A: normalised complete
                                     graph), 6 terms, batch 128, N nodes, F features
fwd and inverse run without autograd; fwd+bwd is the gradient of sum(output)
with respect to the input and the parameters.  Convolutions run on oneDNN
("mkldnn", PyTorch's default CPU path) or with oneDNN disabled ("native":
im2col + BLAS); the faster is the reference.

--env tuned (default) runs the timings in a child process with Debian's
OpenMP build of OpenBLAS on the library path (the pthread build the
alternatives may select competes with torch's own OpenMP threads) and glibc's
malloc thresholds raised (big temporaries are otherwise unmapped and faulted
back in on every call): the peer's fastest set-up on our machines.
Needs Debian's python3-torch and python3-numpy.
"""
import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

TERMS = 6            # series terms in training
INVERSE_TERMS = 13   # 2 * TERMS + 1: the inverse needs a tighter truncation
SHAPES = [(64, 12, 16, 16), (64, 48, 8, 8), (64, 3, 32, 32), (16, 96, 16, 16)]
GRAPH_BATCH, GRAPH_NODES, GRAPH_FEATURES = 128, (4, 9, 16, 64), (2, 64)
TUNED = {"LD_LIBRARY_PATH": "/usr/lib/x86_64-linux-gnu/openblas-openmp",
         "MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(2 << 30)}
CHILD_FLAG = "FXP_PEER_CHILD"


def series(apply, x, terms):
    """sum_{k=0..terms} M^k x / k!, each power from the previous one."""
    total, power = x, x
    for k in range(1, terms + 1):
        power = apply(power) / k
        total = total + power
    return total


def conv_exp(x, kernel, terms=TERMS):
    return series(lambda v: F.conv2d(v, kernel, padding=1), x, terms)


def conv_exp_inverse(y, kernel, terms=INVERSE_TERMS):
    return conv_exp(y, -kernel, terms)


def normalised_complete_graph(n):
    """D^-1/2 A D^-1/2 of the complete graph without self loops: (J - I)/(n-1)."""
    return (torch.ones(n, n) - torch.eye(n)) / (n - 1)


def graph_conv_exp(x, t0, t1, a_hat, terms=TERMS):
    """x [B, N, F]; one product: X t0 + (A X) t1."""
    return series(lambda v: v @ t0 + torch.matmul(a_hat, v) @ t1, x, terms)


def self_check():
    """Float64, tiny shapes: the inverse undoes the forward map, and
    log|det| = tr M (conv: H W tr k[:, :, 1, 1]; graph: N tr t0 + tr(A) tr t1)
    matches the Jacobian's."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        x = torch.randn(1, 2, 4, 3, generator=gen, dtype=torch.float64)
        k = torch.randn(2, 2, 3, 3, generator=gen, dtype=torch.float64) * 0.2
        back = conv_exp_inverse(conv_exp(x, k, 40), k, 40)
        assert (back - x).abs().max().item() < 1e-10, "conv_exp inverse"
    jac = torch.autograd.functional.jacobian(lambda v: conv_exp(v, k, 40), x).reshape(24, 24)
    exact = torch.linalg.slogdet(jac)[1].item()
    assert abs(exact - 4 * 3 * torch.diagonal(k[:, :, 1, 1]).sum().item()) < 1e-8, "conv logdet"
    a = normalised_complete_graph(4).double()
    x = torch.randn(1, 4, 2, generator=gen, dtype=torch.float64)
    t0 = torch.randn(2, 2, generator=gen, dtype=torch.float64) * 0.3
    t1 = torch.randn(2, 2, generator=gen, dtype=torch.float64) * 0.3
    jac = torch.autograd.functional.jacobian(lambda v: graph_conv_exp(v, t0, t1, a, 40), x)
    exact = torch.linalg.slogdet(jac.reshape(8, 8))[1].item()
    assert abs(exact - (4 * torch.trace(t0) + torch.trace(a) * torch.trace(t1)).item()) < 1e-8, \
        "graph logdet"
    print("self-check: inverses and log-determinants exact")


def measure(fn, quick):
    """Median and minimum seconds of fn() after warm-up calls: at least 7
    timed calls (3 with --quick) and at least 1 s (0.2 s) in all, at most 500."""
    reps, budget = (3, 0.2) if quick else (7, 1.0)
    for _ in range(3):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < reps or (time.perf_counter() - start < budget and len(times) < 500):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), len(times)


def cases(backends):
    """(description, callable) pairs; the description carries op, backend,
    shape, terms and the floating-point work in GFLOP."""
    gen = torch.Generator().manual_seed(11)
    for b, c, h, w in SHAPES:
        x = torch.randn(b, c, h, w, generator=gen)
        k = torch.randn(c, c, 3, 3, generator=gen) * (0.5 / (9 * c) ** 0.5)
        xg, kg = x.clone().requires_grad_(True), k.clone().requires_grad_(True)
        one = 2.0 * b * h * w * c * c * 9 / 1e9  # GFLOP of one convolution

        def train(xg=xg, kg=kg):
            torch.autograd.grad(conv_exp(xg, kg).sum(), [xg, kg])

        for backend in backends:
            for op, terms, gflop, fn in (
                    ("conv_exp fwd", TERMS, TERMS * one, lambda x=x, k=k: conv_exp(x, k)),
                    ("conv_exp fwd+bwd", TERMS, 3 * TERMS * one, train),
                    ("conv_exp inverse", INVERSE_TERMS, INVERSE_TERMS * one,
                     lambda x=x, k=k: conv_exp_inverse(x, k))):
                yield dict(op=op, backend=backend, shape=[b, c, h, w], terms=terms, gflop=gflop), fn
    for f in GRAPH_FEATURES:
        for n in GRAPH_NODES:
            x = torch.randn(GRAPH_BATCH, n, f, generator=gen).requires_grad_(True)
            t0 = (torch.randn(f, f, generator=gen) * (0.5 / f ** 0.5)).requires_grad_(True)
            t1 = (torch.randn(f, f, generator=gen) * (0.5 / f ** 0.5)).requires_grad_(True)
            a = normalised_complete_graph(n)
            one = 2.0 * GRAPH_BATCH * n * f * (2 * f + n) / 1e9

            def train(x=x, t0=t0, t1=t1, a=a):
                torch.autograd.grad(graph_conv_exp(x, t0, t1, a).sum(), [x, t0, t1])

            yield dict(op="graph_conv_exp fwd+bwd", backend="blas", shape=[GRAPH_BATCH, n, f],
                       terms=TERMS, gflop=3 * TERMS * one), train


def openblas_handle():
    """The OpenBLAS torch calls into (through libblas.so.3), or None."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib
    except OSError:
        return None


def run(args):
    if not args.no_check:
        self_check()
    blas = openblas_handle()
    blas_text = None if blas is None else \
        f"{blas.openblas_get_config().decode()} core={blas.openblas_get_corename().decode()}"
    print(f"torch {torch.__version__}; {blas_text}; env {args.env}", flush=True)
    print(f"{'op':<24}{'backend':<8}{'shape':<16}{'terms':>6}{'thr':>4}{'median_ms':>11}"
          f"{'min_ms':>10}{'GFLOP/s':>9}{'reps':>6}")
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)       # ATen and oneDNN
        if blas is not None:
            blas.openblas_set_num_threads(threads)
        for meta, fn in cases(args.backends):
            training = meta["op"].endswith("fwd+bwd")
            with torch.backends.mkldnn.flags(enabled=meta["backend"] != "native"), \
                    torch.set_grad_enabled(training):
                med, best, reps = measure(fn, args.quick)
            meta.update(threads=threads, median_ms=1e3 * med, min_ms=1e3 * best, reps=reps,
                        gflops=meta["gflop"] / med)
            results.append(meta)
            print(f"{meta['op']:<24}{meta['backend']:<8}{'x'.join(map(str, meta['shape'])):<16}"
                  f"{meta['terms']:>6}{threads:>4}{1e3 * med:>11.3f}{1e3 * best:>10.3f}"
                  f"{meta['gflops']:>9.1f}{reps:>6}", flush=True)
    env = dict(torch=torch.__version__, python=platform.python_version(), openblas=blas_text,
               env_mode=args.env,
               variables={k: os.environ.get(k) for k in
                          list(TUNED) + ["OPENBLAS_CORETYPE", "OMP_NUM_THREADS"]},
               notes="fwd and inverse without autograd; fwd+bwd: gradient of sum(output) "
                     "w.r.t. input and parameters. GFLOP: 2*B*H*W*C*C*9 per convolution, "
                     "2*B*N*F*(2F+N) per graph product; fwd+bwd counts 3 products per term.")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(dict(environment=env, results=results), fh, indent=1)
        os.replace(tmp, args.json)
        print(f"wrote {args.json}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--backends", nargs="+", choices=["mkldnn", "native"],
                    default=["mkldnn", "native"])
    ap.add_argument("--quick", action="store_true", help="fewer timed calls")
    ap.add_argument("--no-check", action="store_true", help="skip the float64 self-check")
    ap.add_argument("--env", choices=["tuned", "default"], default="tuned")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if any(t < 1 or t > 256 for t in args.threads):
        sys.exit("peer_torch: thread counts must be in 1..256")
    if args.env == "tuned" and os.environ.get(CHILD_FLAG) != "1":
        # the dynamic loader and glibc read these at start-up: run a child
        env = dict(os.environ, **TUNED)
        env[CHILD_FLAG] = "1"
        sys.exit(os.spawnve(os.P_WAIT, sys.executable, [sys.executable] + sys.argv, env))
    run(args)


if __name__ == "__main__":
    main()
