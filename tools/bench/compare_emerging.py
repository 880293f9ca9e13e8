#!/usr/bin/python3
"""Time the emerging layer's inverse against its forward (bench_mixing) and
our square autoregressive solve against the authors' Cython solve on the
same numbers, and check that both give the same result.

    /usr/bin/python3 tools/bench/compare_emerging.py [--build build]
        [--authors DIR] [--threads 1 2] [--batch 100] [--reps 5] [--repeat 1]
        [--quick]

--repeat N runs bench_mixing N times (each a median over its own
repetitions) and the Cython solve reps times after each, and prints the
median over the runs with their range: on a shared machine single runs
vary a lot.

--authors is a checkout of ehoogeboom/convolution_exponential_and_sylvester
(default: $FXP_AUTHORS_DIR, else ../authors beside the repository); the
script skips the Cython side (exit 77) if it is absent.  Their
models/transformations/emerging/inverse_op_cython.pyx is compiled with
Debian's cython3 through pyximport, as their inverse_triang_conv.py does,
but into a temporary build directory (their checkout is left untouched);
it needs python3-numpy and cython3 only (no torch).  Their solve is timed
as their Inverse.__call__ runs it: subtract the bias, convert to float64,
inverse_conv, convert back to float32.  It is single-threaded (their
parallel prange is commented out).  Benchmarks only: the library never
needs Python.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHAPES = [(12, 16, 16), (24, 8, 8)]


def load_authors_solve(authors, build_dir):
    src = os.path.join(authors, "models", "transformations", "emerging")
    if not os.path.isfile(os.path.join(src, "inverse_op_cython.pyx")):
        return None
    import numpy as np
    import pyximport
    pyximport.install(build_dir=build_dir, inplace=False,
                      setup_args={"include_dirs": np.get_include()}, language_level=3)
    sys.path.insert(0, src)
    import inverse_op_cython  # noqa: E402  (their module, compiled above)
    return inverse_op_cython.inverse_conv


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--authors", default=os.environ.get(
        "FXP_AUTHORS_DIR", os.path.normpath(os.path.join(ROOT, "..", "authors"))))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5, help="repetitions of the Cython solve")
    ap.add_argument("--repeat", type=int, default=1, help="runs of the whole comparison")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()

    import numpy as np
    exe = os.path.join(args.build, "tools", "bench", "bench_mixing")
    if not os.access(exe, os.X_OK):
        sys.exit(f"compare_emerging: {exe} not found; build first")
    with tempfile.TemporaryDirectory() as tmp:
        solve = load_authors_solve(args.authors, os.path.join(tmp, "pyxbld"))
        if solve is None:
            print(f"compare_emerging: no authors' code at {args.authors}; timing ours only")
        runs, them, diffs = [], {}, {}
        for rep in range(args.repeat):
            js = os.path.join(tmp, "mixing.json")
            cmd = [exe, "--kinds", "1x1,emerging", "--batch", str(args.batch),
                   "--threads", ",".join(map(str, args.threads)), "--json", js, "--dump", tmp]
            for s in SHAPES:
                cmd += ["--shape", ",".join(map(str, s))]
            if args.quick:
                cmd.append("--quick")
            print("$", " ".join(cmd), "   # run %d of %d" % (rep + 1, args.repeat), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            runs.append(json.load(open(js)))
            for (C, H, W) in SHAPES if solve else []:
                stem = os.path.join(tmp, "sar_%dx%dx%d_b%d" % (C, H, W, args.batch))
                z = np.fromfile(stem + ".z.f32", dtype="<f4").reshape(args.batch, C, H, W)
                k = np.fromfile(stem + ".k.f32", dtype="<f4").reshape(C, C, 2, 2)
                b = np.fromfile(stem + ".b.f32", dtype="<f4").reshape(1, C, 1, 1)
                x_ours = np.fromfile(stem + ".x.f32", dtype="<f4").reshape(args.batch, C, H, W)
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    x = solve(np.array(z - b, dtype="float64"),
                              np.array(k, dtype="float64")).astype("float32")
                    them.setdefault((C, H, W), []).append((time.perf_counter() - t0) * 1e3)
                diff = float(np.max(np.abs(x.astype("float64") - x_ours)))
                scale = float(np.max(np.abs(x)))
                diffs[(C, H, W)] = (diff, scale)
                if not diff <= 1e-5 * max(1.0, scale):
                    sys.exit("compare_emerging: our solve differs from the authors' by %g" % diff)

    def agg(values):
        return "%.3f [%.3f-%.3f]" % (median(values), min(values), max(values))

    print("\nmedian over %d run(s) [min-max], ms; batch %d" % (args.repeat, args.batch))
    print("\nsquare autoregressive solve x = A^-1 (z - b): ours (double, vectorised over 8 "
          "images) against the authors' Cython (double, 1 thread)")
    print("%-10s %4s %28s %28s %9s" % ("C,H,W", "thr", "ours", "authors' Cython", "speed-up"))
    for (C, H, W) in SHAPES:
        for t in args.threads:
            ours = [r["solve_ms"] for run in runs for r in run["sar_solve"]
                    if tuple(r["shape"]) == (C, H, W) and r["threads"] == t]
            th = them.get((C, H, W))
            print("%-10s %4d %28s %28s %9s" % (
                "%d,%d,%d" % (C, H, W), t, agg(ours), agg(th) if th else "-",
                "%.0fx" % (median(th) / median(ours)) if th else "-"))
        if (C, H, W) in diffs:
            print("%-10s max |ours - Cython| = %.3g (max |x| = %.3g)" % (
                "", diffs[(C, H, W)][0], diffs[(C, H, W)][1]))
    print("\nemerging layer (forward, inverse without gradients) and the 1x1 layer's inverse")
    print("%-10s %4s %28s %28s %8s %14s" % ("C,H,W", "thr", "emerging fwd", "emerging inv",
                                           "inv/fwd", "inv / 1x1 inv"))
    for (C, H, W) in SHAPES:
        for t in args.threads:
            def pick(kind, key):
                return [r[key] for run in runs for r in run["layers"]
                        if r["kind"] == kind and tuple(r["shape"]) == (C, H, W)
                        and r["threads"] == t]
            fwd, inv, one = pick("emerging", "fwd_ms"), pick("emerging", "inv_ms"), \
                pick("1x1", "inv_ms")
            print("%-10s %4d %28s %28s %8.2f %14.1f" % (
                "%d,%d,%d" % (C, H, W), t, agg(fwd), agg(inv), median(inv) / median(fwd),
                median(inv) / median(one)))
    if not solve:
        sys.exit(77)


if __name__ == "__main__":
    main()
