/* Fuzz target: the HDF5 dataset readers on arbitrary bytes —
 * fxp_dataset_read (a split of graphs, rank 3, floats only),
 * fxp_h5_read_array (any numeric dataset) and fxp_h5_read_attr.  Either a
 * call fails with a message and an empty tensor, or it returns an owning
 * tensor of a valid shape holding finite values; HDF5 must not crash and no
 * handle may stay open. */
#include <hdf5.h>
#include <math.h>

#include "fuzz_common.h"

static void check_tensor(fxp_ctx *ctx, int rc, fxp_tensor *t, int want_rank)
{
    fuzz_check_status(ctx, rc);
    if (rc < 0) {
        if (t->data) abort();
        return;
    }
    const int64_t n = fxp_tensor_numel(t);
    if (!t->data || !t->owns || n < 1 || (want_rank && t->ndim != want_rank)) abort();
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(t->data[i])) abort();
    fxp_tensor_release(t);
}

/* One file opening per input (HDF5 takes about 1 ms to open one), the call
 * chosen by the input's size modulo 4. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fxp_ctx *ctx = fuzz_ctx();
    const char *path = fuzz_file(data, size);
    fxp_tensor t;
    char buf[128];
    switch (size % 4) {
    case 0: check_tensor(ctx, fxp_dataset_read(ctx, path, "train", &t), &t, 3); break;
    case 1: check_tensor(ctx, fxp_h5_read_array(ctx, path, "graphs/test", &t), &t, 0); break;
    case 2: check_tensor(ctx, fxp_h5_read_array(ctx, path, "samples", &t), &t, 0); break;
    default: fuzz_check_status(ctx, fxp_h5_read_attr(ctx, path, "dataset", buf, sizeof buf)); break;
    }
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) abort(); /* every handle closed */
    return 0;
}
