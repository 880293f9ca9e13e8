#!/usr/bin/python3
"""Run libflowexp's exponential benchmark and the PyTorch peer in one
invocation, on the same machine, and print speed ratios against the targets.

    /usr/bin/python3 tools/bench/compare_peer.py [--build build] [--quick]
        [--threads 1 2] [--algo auto im2col direct] [--coretype default SkylakeX Haswell]
        [--md FILE] [--json FILE]

ratio = peer median / our median (> 1: we are faster).  The peer is
tools/bench/peer_torch.py (or --peer); for each case its faster backend
(oneDNN or native) is the reference.  Benchmarks only: the library never
needs Python.  Needs Debian's python3-torch (installed here if missing and
we are root).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_PEER = os.path.join(HERE, "peer_torch.py")

# speed-ratio targets at 2 threads (issue 3), by op family and size
CONV_TARGET = {3: 3.0, 12: 2.0, 48: 1.0, 96: 1.0}
GRAPH_TARGET = {2: 20.0, 64: 1.5}
SGEMM_TARGET = 0.80  # conv-exp fwd at C=96 against cblas_sgemm 2048^3


def ensure_torch():
    probe = subprocess.run(["/usr/bin/python3", "-c", "import torch, numpy"],
                           capture_output=True)
    if probe.returncode == 0:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("compare_peer: the peer needs Debian's python3-torch and python3-numpy "
                 "(apt-get install python3-torch python3-numpy)")
    print("compare_peer: installing python3-torch python3-numpy", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "python3-torch", "python3-numpy", "libopenblas0-openmp"], check=True, env=env)


def run_ours(build, threads, quick, coretype, algo):
    exe = os.path.join(build, "tools", "bench", "bench_expm")
    if not os.access(exe, os.X_OK):
        sys.exit(f"compare_peer: {exe} not found; build first (scripts/setup.sh)")
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype != "default":
        env["OPENBLAS_CORETYPE"] = coretype
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        path = fh.name
    cmd = [exe, "--threads", ",".join(map(str, threads)), "--json", path, "--algo", algo] + \
          (["--quick"] if quick else [])
    print("$", ("OPENBLAS_CORETYPE=" + coretype + " " if coretype != "default" else "") + " ".join(cmd),
          flush=True)
    subprocess.run(cmd, check=True, env=env)
    with open(path) as fh:
        data = json.load(fh)
    os.unlink(path)
    return data


def run_peer(peer, threads, quick):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        path = fh.name
    cmd = ["/usr/bin/python3", peer, "--threads", *map(str, threads), "--json", path] + \
          (["--quick"] if quick else [])
    print("$", " ".join(cmd), flush=True)
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)  # the peer's BLAS as detected, like our "default"
    subprocess.run(cmd, check=True, env=env)
    with open(path) as fh:
        data = json.load(fh)
    os.unlink(path)
    return data


def target_for(op, shape):
    dims = [int(v) for v in shape.split("x")]
    if op.startswith("conv_exp"):
        return CONV_TARGET.get(dims[1])
    if op.startswith("graph_conv_exp"):
        return GRAPH_TARGET.get(dims[2])
    return None


def compare(ours, peer, label):
    best_peer = {}
    for r in peer["results"]:
        key = (r["op"], "x".join(map(str, r["shape"])), r["threads"])
        if key not in best_peer or r["median_ms"] < best_peer[key]["median_ms"]:
            best_peer[key] = r
    rows = []
    for r in ours["results"]:
        if r["op"] == "cblas_sgemm":
            rows.append(dict(label=label, op=r["op"], shape=r["shape"], threads=r["threads"],
                             ours=r["median_ms"], gflops=r["gflops"], sgemm=r["sgemm_gflops"]))
            continue
        base_op = r["op"].replace(" rnd", "")  # the peer's cost does not depend on the pattern
        p = best_peer.get((base_op, r["shape"], r["threads"]))
        ratio = p["median_ms"] / r["median_ms"] if p else None
        tgt = target_for(r["op"], r["shape"]) if r["threads"] == 2 else None
        rows.append(dict(label=label, op=r["op"], shape=r["shape"], threads=r["threads"],
                         ours=r["median_ms"], peer=p["median_ms"] if p else None,
                         backend=p["backend"] if p else "", ratio=ratio, target=tgt,
                         gflops=r["gflops"], sgemm=r["sgemm_gflops"]))
    return rows


def table(rows, variants, threads):
    """One line per (op, shape): the peer's and the first variant's medians
    at every thread count, the first variant's ratios, the target at 2
    threads, the other variants' ratios at the largest thread count."""
    first, tmax = variants[0], max(threads)
    by = {}
    for r in rows:
        by.setdefault((r["op"], r["shape"]), {})[(r["label"], r["threads"])] = r
    thr = "/".join(map(str, threads))
    head = (["op", "shape", f"peer ms ({thr} thr)", f"ours ms ({thr} thr)"]
            + [f"ratio {t} thr" for t in threads] + ["target (2 thr)"]
            + [f"ratio {v}, {tmax} thr" for v in variants[1:]]
            + [f"GFLOP/s {tmax} thr (% sgemm)"])
    out = []
    sg = by.get(("cblas_sgemm", "2048^3"), {})
    for v in variants:
        rates = ", ".join(f"{sg[(v, t)]['gflops']:.0f} ({t} thr)" for t in threads if (v, t) in sg)
        out.append(f"cblas_sgemm 2048³ in the run of `{v}`: {rates} GFLOP/s  ")
    out += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (op, shape), d in by.items():
        if op == "cblas_sgemm":
            continue
        def cell(v, t, key, fmt):
            r = d.get((v, t))
            return fmt.format(r[key]) if r and r.get(key) is not None else "n/a"
        peer = "/".join(cell(first, t, "peer", "{:.3f}") for t in threads)
        ours = "/".join(cell(first, t, "ours", "{:.3f}") for t in threads)
        ratios = [cell(first, t, "ratio", "{:.2f}×") for t in threads]
        r2 = d.get((first, 2))
        tgt = ""
        if r2 and r2.get("target"):
            met = r2["ratio"] is not None and r2["ratio"] >= r2["target"]
            tgt = f"{r2['target']:g}× {'met' if met else 'missed'}"
        others = [cell(v, tmax, "ratio", "{:.2f}×") for v in variants[1:]]
        rt = d.get((first, tmax))
        perf = "n/a"
        if rt:
            pct = 100 * rt["gflops"] / rt["sgemm"]
            perf = f"{rt['gflops']:.1f} ({pct:.0f}%)"
            if op == "conv_exp fwd" and shape.split("x")[1] == "96":
                perf += f" target ≥ {100 * SGEMM_TARGET:.0f}%: {'met' if pct >= 100 * SGEMM_TARGET else 'missed'}"
        out.append("| " + " | ".join([op, shape, peer, ours] + ratios + [tgt] + others + [perf]) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--peer", default=DEFAULT_PEER)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (both programs)")
    ap.add_argument("--coretype", choices=["default", "SkylakeX", "Haswell"], nargs="+",
                    default=["default"],
                    help="OpenBLAS kernels for our runs: as detected (OPENBLAS_CORETYPE removed) "
                         "and/or forced AVX-512 (SkylakeX) or AVX2 (Haswell)")
    ap.add_argument("--algo", choices=["auto", "im2col", "direct"], nargs="+", default=["auto"],
                    help="convolution algorithm(s) for our runs (bench_expm --algo)")
    ap.add_argument("--md", help="also write the table (markdown) here")
    ap.add_argument("--json", help="also write all raw results here")
    args = ap.parse_args()
    if any(t < 1 or t > 256 for t in args.threads):
        sys.exit("compare_peer: thread counts must be in 1..256")
    if not os.path.isfile(args.peer):
        sys.exit(f"compare_peer: peer script {args.peer} not found (--peer)")
    ensure_torch()
    variants = [(a, c) for a in args.algo for c in args.coretype]
    ours = {v: run_ours(args.build, args.threads, args.quick, v[1], v[0]) for v in variants}
    peer = run_peer(args.peer, args.threads, args.quick)
    rows, labels = [], []
    for v in variants:
        core = ours[v]["core"] + (" forced" if v[1] != "default" else "")
        labels.append(f"{v[0]}, {core}")
        rows += compare(ours[v], peer, labels[-1])
    md = table(rows, labels, args.threads)
    print()
    print(md)
    env = peer.get("environment", {})
    print(f"\npeer: torch {env.get('torch')}, {env.get('openblas')}; ours: "
          + "; ".join(f"{v[0]}/{v[1]}: {ours[v]['blas']} core {ours[v]['core']}" for v in variants))
    if args.md:
        tmp = args.md + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(md + "\n")
        os.replace(tmp, args.md)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(dict(ours={f"{a}/{c}": r for (a, c), r in ours.items()}, peer=peer, rows=rows),
                      fh, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
