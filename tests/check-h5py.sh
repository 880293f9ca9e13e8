#!/bin/sh
# h5py reads the checkpoint and dataset files libflowexp writes (plain names,
# types and attributes), and libflowexp reads a graph file h5py writes.
# Usage: check-h5py.sh H5_EXAMPLE_HELPER
# Skipped (exit 77) unless /usr/bin/python3 has h5py and numpy.
helper=$1
py=/usr/bin/python3
if ! [ -x "$py" ] || ! "$py" -c 'import h5py, numpy' >/dev/null 2>&1; then
    echo "h5py is not available to $py: skipped"
    exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
"$helper" write "$tmp" || exit 1
exec "$py" - "$helper" "$tmp" <<'EOF'
import subprocess, sys
import h5py, numpy as np

helper, tmp = sys.argv[1], sys.argv[2]

def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)

with h5py.File(tmp + "/ckpt.h5", "r") as f:
    check(f.attrs["format"] == "libflowexp-checkpoint", "format attribute")
    check(int(f.attrs["format_version"]) == 2, "format_version")
    bad = []
    f.visititems(lambda n, o: bad.append(n) if isinstance(o, h5py.Dataset) and
                 not o.fletcher32 and o.shape != () else None)
    check(not bad, "datasets without a Fletcher32 checksum: %r" % bad)
    check(isinstance(f.attrs["library_version"], str), "library_version is a string")
    th = f["params/flow/0/gce/theta0"]
    check(th.dtype == np.float32 and th.shape == (2, 2), "theta0 type/shape")
    check(np.array_equal(th[()], [[1, 2], [3, 4]]), "theta0 values")
    check(np.array_equal(f["params/flow/1/coupling/b"][()], [5, 6, 7]), "b values")
    check(np.array_equal(f["state/flow/0/actnorm/initialized"][()], [1]), "state values")
    check(sorted(f["params"].keys()) == ["flow"], "params groups")
    opt = f["optimizer"]
    check(opt.attrs["kind"] == "adam" and int(opt.attrs["steps"]) == 5, "optimizer attributes")
    check(np.array_equal(f["optimizer/m/flow/1/coupling/b"][()], [2.0, 2.5, 3.0]), "m values")
    check(np.array_equal(f["optimizer/v/flow/0/gce/theta0"][()], [[0, 0.25], [0.5, 0.75]]), "v values")
    rng = f["rng/data"]
    check(rng.dtype == np.uint64 and list(rng[()]) == [42, 7], "rng dataset")
    check(int(rng.attrs["seed"]) == 42 and int(rng.attrs["counter"]) == 7, "rng attributes")
    cfg = {k: v for k, v in f["config"].attrs.items()}
    check(cfg == {"model": "gnf-gce", "hidden": "64", "dataset": "mog9"}, "config %r" % cfg)

with h5py.File(tmp + "/data.h5", "r") as f:
    check(f.attrs["dataset"] == "mog9" and int(f.attrs["n_nodes"]) == 9, "dataset attributes")
    for name, n in (("train", 40), ("valid", 10), ("test", 20)):
        d = f[name]
        check(d.dtype == np.float32 and d.shape == (n, 9, 2), name + " type/shape")
    x = f["train"][()]
    check(abs(x.mean() - 5.0) < 0.5, "train mean near the grid centre (5, 5)")
    check(abs(float(f.attrs["entropy_per_node"]) - 4.26) < 0.1, "entropy attribute")

# the reverse: float64, gzip-compressed, in a group; and an integer dataset
with h5py.File(tmp + "/foreign.h5", "w") as f:
    f.create_dataset("graphs/test", data=np.arange(60, dtype=np.float64).reshape(3, 4, 5) / 4,
                     compression="gzip", chunks=(1, 4, 5))
    f.create_dataset("labels", data=np.zeros((3, 4, 2), dtype=np.int64))
out = subprocess.run([helper, "read", tmp + "/foreign.h5", "graphs/test"],
                     capture_output=True, text=True)
check(out.returncode == 0, "library read of h5py file: " + out.stderr)
check(out.stdout.split() == ["shape", "3", "4", "5", "sum", "442.5"], "read back " + out.stdout)
out = subprocess.run([helper, "read", tmp + "/foreign.h5", "labels"], capture_output=True, text=True)
check(out.returncode == 1 and "integers" in out.stderr, "integer dataset refused: " + out.stderr)
print("h5py %s reads libflowexp files and libflowexp reads h5py files" % h5py.__version__)
EOF
