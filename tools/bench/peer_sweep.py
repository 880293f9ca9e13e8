#!/usr/bin/python3
"""The PyTorch peer (../shared/peer/peer_torch.py: its conv_exp, inv_conv_exp,
graph_conv_exp, kernel scale and timing loop) on the cases of
build/tools/bench/bench_sweep, written as JSON in bench_sweep's format.

    /usr/bin/python3 tools/bench/peer_sweep.py --peer ../shared/peer/peer_torch.py
        [--threads 1 2] [--group conv-fwd|conv-inv|conv-fwdbwd|graph-fwd] [--quick]
        --json FILE

Like the peer itself it re-executes with Debian's OpenMP OpenBLAS and raised
glibc malloc thresholds (its fastest configuration), runs forward and
inverse under no_grad, and takes for every case the faster of its oneDNN
and native convolution backends.
"""
import argparse
import importlib.util
import json
import os
import sys

TUNED_ENV = {"LD_LIBRARY_PATH": "/usr/lib/x86_64-linux-gnu/openblas-openmp",
             "MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
CONV_C = [3, 6, 12, 24, 32, 48, 64, 96, 128, 192, 256]
CONV_H = [8, 16, 32]
GRAPH_F = [2, 16, 64]
GRAPH_N = [4, 9, 16, 32, 64]


def conv_batch(c, h):
    """bench_sweep's batch: 196608 / (C H W) images, clamped to [1, 64]."""
    return max(1, min(64, round(196608.0 / (c * h * h))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peer", required=True)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--group", choices=["conv-fwd", "conv-inv", "conv-fwdbwd", "graph-fwd"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    if any(os.environ.get(k) != v for k, v in TUNED_ENV.items()):
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, **TUNED_ENV))
    spec = importlib.util.spec_from_file_location("peer_torch", a.peer)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    torch = peer.torch
    import ctypes
    try:
        openblas = ctypes.CDLL("libopenblas.so.0")
    except OSError:
        openblas = None
    min_reps, min_time = (3, 0.1) if a.quick else (5, 0.3)
    results = []
    for threads in a.threads:
        peer.set_threads(threads, openblas)
        gen = torch.Generator().manual_seed(1)
        groups = [a.group] if a.group else ["conv-fwd", "conv-inv", "conv-fwdbwd", "graph-fwd"]
        for h in CONV_H:
            for c in CONV_C:
                if not any(g.startswith("conv") for g in groups):
                    break
                b = conv_batch(c, h)
                x = torch.randn(b, c, h, h, generator=gen)
                k = peer.make_kernel(c, gen)
                xg, kg = x.clone().requires_grad_(), k.clone().requires_grad_()

                def fwdbwd(xg=xg, kg=kg):
                    torch.autograd.grad(peer.conv_exp(xg, kg).sum(), (xg, kg))

                ops = {"conv-fwd": ("conv_exp fwd", lambda x=x, k=k: peer.conv_exp(x, k), False),
                       "conv-inv": ("conv_exp inverse", lambda x=x, k=k: peer.inv_conv_exp(x, k),
                                    False),
                       "conv-fwdbwd": ("conv_exp fwd+bwd", fwdbwd, True)}
                for grp in groups:
                    if grp not in ops:
                        continue
                    name, fn, grad = ops[grp]
                    best = None
                    for backend in ["mkldnn", "native"]:
                        with torch.backends.mkldnn.flags(enabled=backend != "native"), \
                                torch.set_grad_enabled(grad):
                            med, mn, reps = peer.timeit(fn, min_reps, min_time)
                        if best is None or med < best[0]:
                            best = (med, mn, backend)
                    results.append(dict(op=name, shape=f"{b}x{c}x{h}x{h}", threads=threads,
                                        median_ms=best[0] * 1e3, min_ms=best[1] * 1e3,
                                        backend=best[2]))
                    print(f"{name:<24}{b}x{c}x{h}x{h:<8}{threads:>4}{best[0] * 1e3:>11.4f} "
                          f"{best[2]}", flush=True)
        if "graph-fwd" in groups:
            for f in GRAPH_F:
                for n in GRAPH_N:
                    x = torch.randn(128, n, f, generator=gen)
                    t0 = torch.randn(f, f, generator=gen) * 0.5 / f ** 0.5
                    t1 = torch.randn(f, f, generator=gen) * 0.5 / f ** 0.5
                    adj = peer.complete_graph_adjacency(n)
                    with torch.no_grad():
                        med, mn, reps = peer.timeit(
                            lambda: peer.graph_conv_exp(x, t0, t1, adj), min_reps, min_time)
                    # the dense einsum costs the same for any adjacency pattern
                    for op in ["graph_conv_exp fwd", "graph_conv_exp fwd rnd"]:
                        results.append(dict(op=op, shape=f"128x{n}x{f}", threads=threads,
                                            median_ms=med * 1e3, min_ms=mn * 1e3, backend="blas"))
                    print(f"graph_conv_exp fwd      128x{n}x{f:<10}{threads:>4}{med * 1e3:>11.4f}",
                          flush=True)
    env = dict(torch=torch.__version__, threads_default=peer.DEFAULT_THREADS,
               env={k: os.environ.get(k) for k in list(TUNED_ENV) + ["OPENBLAS_CORETYPE"]})
    with open(a.json + ".tmp", "w") as fh:
        json.dump(dict(environment=env, results=results), fh, indent=1)
    os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
