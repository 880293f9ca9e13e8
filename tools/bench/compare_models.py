#!/usr/bin/python3
"""Whole image models: libflowexp against the authors' PyTorch code, in
alternating runs on the same machine, with ratios taken within each round.

    /usr/bin/python3 tools/bench/compare_models.py [--rounds 3] [--steps 3]
        [--samples 100] [--batch 32] [--threads 2] [--save-memory both|on|off]
        [--authors /work/authors] [--json FILE] [--md FILE]

One round runs `flowexp bench --model flow-convexp` (our variants: with and
without --save-memory) and then the authors' Table-1 model with the
convolution exponential through ../shared/peer/official/time_official.py
(case t1-convexp-c32, Debian's torch, OpenMP OpenBLAS, the same thread
count).  Each program times `--steps` training steps after one warm-up step
(median), one sampling of `--samples` images in one pass (ours: --sample-chunk =
--sample; the authors' sampler draws them at once), and
reports its peak resident memory.  ratio = authors / ours (> 1: we are
faster, or leaner for memory: ours / authors < 1).  The load of the machine
(/proc/loadavg) is recorded before every run: the machines are shared, so
only ratios from the same round are compared.  Benchmarks only: the library
never needs Python.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OFFICIAL = os.path.normpath(os.path.join(ROOT, "..", "shared", "peer", "official",
                                                 "time_official.py"))
OPENBLAS_OMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def loadavg():
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def run_ours(exe, a, save_memory):
    cmd = [exe, "bench", "--model", "flow-convexp", "--batch", str(a.batch), "--steps",
           str(a.steps), "--threads", str(a.threads), "--sample", str(a.samples),
           "--sample-chunk", str(a.samples), "--json"]
    if save_memory:
        cmd.append("--save-memory")
    print("$", " ".join(cmd), flush=True)
    load = loadavg()
    t0 = time.time()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res.update(load_before=load, wall_s=time.time() - t0)
    # The sampling in `flowexp bench` is one timed call; a warm-up sampling is
    # part of the preceding training (the same kernels), so none is added.
    return res


def run_authors(script, a):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        path = fh.name
    cmd = ["/usr/bin/python3", script, "--case", "t1-convexp-c32", "--ces", a.authors,
           "--threads", str(a.threads), "--batch", str(a.batch), "--steps", str(a.steps),
           "--warmup", "1", "--sample-reps", "1", "--n-samples", str(a.samples),
           "--min-time-s", "0", "--sample-min-time-s", "0", "--json", path]
    env = dict(os.environ, LD_LIBRARY_PATH=OPENBLAS_OMP_DIR, OMP_NUM_THREADS=str(a.threads),
               PYTHONDONTWRITEBYTECODE="1")
    print("$", " ".join(cmd), flush=True)
    load = loadavg()
    t0 = time.time()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(path) as fh:
        res = json.load(fh)
    os.unlink(path)
    res.update(load_before=load, wall_s=time.time() - t0)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--official", default=DEFAULT_OFFICIAL)
    ap.add_argument("--authors", default="/work/authors", help="checkout of the authors' code")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-memory", choices=["both", "on", "off"], default="both")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--md", help="write the table (markdown) here")
    a = ap.parse_args()
    exe = os.path.join(a.build, "tools", "flowexp", "flowexp")
    if not os.access(exe, os.X_OK):
        sys.exit(f"compare_models: {exe} not found; build first")
    if not os.path.isfile(a.official) or not os.path.isdir(a.authors):
        sys.exit(f"compare_models: need {a.official} and the authors' code at {a.authors}")
    variants = {"both": [0, 1], "on": [1], "off": [0]}[a.save_memory]
    rounds = []
    for r in range(a.rounds):
        rnd = {"ours": {}}
        for sm in variants:
            rnd["ours"][sm] = run_ours(exe, a, sm)
        rnd["authors"] = run_authors(a.official, a)
        rounds.append(rnd)
        au = rnd["authors"]
        for sm in variants:
            o = rnd["ours"][sm]
            print(f"round {r + 1} save-memory {sm}: train {au['train_step_s']:.2f} / "
                  f"{o['train_step_s']:.2f} s = {au['train_step_s'] / o['train_step_s']:.2f}x, "
                  f"sample {au['sample_s']:.2f} / {o['sample_s']:.2f} s = "
                  f"{au['sample_s'] / o['sample_s']:.2f}x, peak memory "
                  f"{o['train_peak_rss_mb']:.0f} / {au['maxrss_train_mib']:.0f} MiB = "
                  f"{o['train_peak_rss_mb'] / au['maxrss_train_mib']:.2f} (load "
                  f"{o['load_before']:.1f} / {au['load_before']:.1f})", flush=True)
    lines = ["| variant | rounds | authors train s | ours train s | train ratio (median) | "
             "authors sample s | ours sample s | sample ratio | authors peak MiB | ours peak MiB "
             "| memory ours/authors | load (min-max) |", "|" + "---|" * 12]
    summary = {}
    for sm in variants:
        tr = [x["authors"]["train_step_s"] / x["ours"][sm]["train_step_s"] for x in rounds]
        sr = [x["authors"]["sample_s"] / x["ours"][sm]["sample_s"] for x in rounds]
        mr = [x["ours"][sm]["train_peak_rss_mb"] / x["authors"]["maxrss_train_mib"] for x in rounds]
        loads = [x["ours"][sm]["load_before"] for x in rounds] + \
                [x["authors"]["load_before"] for x in rounds]
        med = statistics.median
        summary[sm] = dict(train_ratio=med(tr), sample_ratio=med(sr), memory_ratio=med(mr),
                           train_ratios=tr, sample_ratios=sr, memory_ratios=mr)
        lines.append("| " + " | ".join([
            "--save-memory" if sm else "default", str(len(rounds)),
            "/".join(f"{x['authors']['train_step_s']:.1f}" for x in rounds),
            "/".join(f"{x['ours'][sm]['train_step_s']:.1f}" for x in rounds),
            f"{med(tr):.2f}× ({', '.join(f'{v:.2f}' for v in tr)})",
            "/".join(f"{x['authors']['sample_s']:.1f}" for x in rounds),
            "/".join(f"{x['ours'][sm]['sample_s']:.1f}" for x in rounds),
            f"{med(sr):.2f}× ({', '.join(f'{v:.2f}' for v in sr)})",
            "/".join(f"{x['authors']['maxrss_train_mib']:.0f}" for x in rounds),
            "/".join(f"{x['ours'][sm]['train_peak_rss_mb']:.0f}" for x in rounds),
            f"{med(mr):.2f}", f"{min(loads):.1f}-{max(loads):.1f}"]) + " |")
    md = "\n".join(lines)
    print()
    print(md)
    if a.md:
        with open(a.md + ".tmp", "w") as fh:
            fh.write(md + "\n")
        os.replace(a.md + ".tmp", a.md)
    if a.json:
        with open(a.json + ".tmp", "w") as fh:
            json.dump(dict(rounds=rounds, summary=summary, args=vars(a)), fh, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
