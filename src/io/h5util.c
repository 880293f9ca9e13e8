/* Internal HDF5 helpers (see h5util.h): atomic creation, opening with
 * classified errors, attributes, and the validating float reader.  Callers
 * wrap calls in H5E_BEGIN_TRY / H5E_END_TRY so HDF5 never prints. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/h5util.h"

/* Every fxp__h5_open starts a new generation: the global heap check
 * (global_heaps_sound, below) is done once per opening (a config read visits
 * many attributes of one open file), never reused for a file opened again
 * (its bytes may have changed).  HDF5 calls are single-threaded (io.h), so
 * plain statics suffice. */
static unsigned open_generation;
static struct {
    unsigned generation;
    int ok;
} heap_check;

int fxp__h5_create_tmp(fxp_ctx *ctx, const char *path, fxp__h5_writer *w)
{
    w->fid = -1;
    w->fd = -1;
    w->path = path;
    w->tmp[0] = '\0';
    if (!path || !*path) return FXP_ERR(ctx, FXP_EINVAL, "empty output path");
    if (snprintf(w->tmp, sizeof w->tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof w->tmp)
        return FXP_ERR(ctx, FXP_EINVAL, "path too long (%zu bytes): %s", strlen(path), path);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w->fd < 0)
        return FXP_ERR(ctx, FXP_EIO, "cannot create %s (does the directory exist and is it "
                       "writable?): %s", w->tmp, strerror(errno));
    /* In memory, growing by 1 MiB; the 1.10 file format gives every
     * metadata block (superblock, object headers, B-trees) a checksum. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0 &&
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST) >= 0)
        w->fid = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (w->fid < 0) {
        close(w->fd);
        w->fd = -1;
        unlink(w->tmp);
        return FXP_ERR(ctx, FXP_ENOMEM, "cannot create the in-memory HDF5 file for %s", path);
    }
    return FXP_OK;
}

/* fsync the directory holding path, so that a completed rename survives a crash. */
static int sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir) return -1;
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* Bob Jenkins' lookup3 hash (hashlittle, initial value 0): the checksum of
 * HDF5's metadata blocks. */
#define ROT32(x, k) (((x) << (k)) | ((x) >> (32 - (k))))
static uint32_t lookup3(const unsigned char *k, size_t length)
{
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)length;
    while (length > 12) {
        a += k[0] + ((uint32_t)k[1] << 8) + ((uint32_t)k[2] << 16) + ((uint32_t)k[3] << 24);
        b += k[4] + ((uint32_t)k[5] << 8) + ((uint32_t)k[6] << 16) + ((uint32_t)k[7] << 24);
        c += k[8] + ((uint32_t)k[9] << 8) + ((uint32_t)k[10] << 16) + ((uint32_t)k[11] << 24);
        a -= c; a ^= ROT32(c, 4); c += b;
        b -= a; b ^= ROT32(a, 6); a += c;
        c -= b; c ^= ROT32(b, 8); b += a;
        a -= c; a ^= ROT32(c, 16); c += b;
        b -= a; b ^= ROT32(a, 19); a += c;
        c -= b; c ^= ROT32(b, 4); b += a;
        length -= 12;
        k += 12;
    }
    switch (length) {
    case 12: c += (uint32_t)k[11] << 24; /* fall through */
    case 11: c += (uint32_t)k[10] << 16; /* fall through */
    case 10: c += (uint32_t)k[9] << 8; /* fall through */
    case 9: c += k[8]; /* fall through */
    case 8: b += (uint32_t)k[7] << 24; /* fall through */
    case 7: b += (uint32_t)k[6] << 16; /* fall through */
    case 6: b += (uint32_t)k[5] << 8; /* fall through */
    case 5: b += k[4]; /* fall through */
    case 4: a += (uint32_t)k[3] << 24; /* fall through */
    case 3: a += (uint32_t)k[2] << 16; /* fall through */
    case 2: a += (uint32_t)k[1] << 8; /* fall through */
    case 1: a += k[0]; break;
    case 0: return c;
    }
    c ^= b; c -= ROT32(b, 14);
    a ^= c; a -= ROT32(c, 11);
    b ^= a; b -= ROT32(a, 25);
    c ^= b; c -= ROT32(b, 16);
    a ^= c; a -= ROT32(c, 4);
    b ^= a; b -= ROT32(a, 14);
    c ^= b; c -= ROT32(b, 24);
    return c;
}

/* HDF5 1.10's H5Fget_file_image clears the superblock's "file open for
 * writing" flags in the copy without updating the superblock checksum
 * (versions 2 and 3 carry one), so the image would not open.  Recompute it
 * when it does not match. */
static void fix_superblock_checksum(unsigned char *img, size_t size)
{
    if (size < 12 || memcmp(img, "\211HDF\r\n\032\n", 8) != 0 || (img[8] != 2 && img[8] != 3))
        return;
    const size_t len = 12 + 4 * (size_t)img[9]; /* four addresses of img[9] bytes */
    if (len + 4 > size) return;
    const uint32_t sum = lookup3(img, len);
    for (int i = 0; i < 4; i++) img[len + i] = (unsigned char)(sum >> (8 * i));
}

/* Write all n bytes (short writes and EINTR retried); -1 with errno set. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        const ssize_t k = write(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) {
            errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int fxp__h5_finish(fxp_ctx *ctx, fxp__h5_writer *w, int ok)
{
    int rc = ok ? FXP_OK : FXP_EIO;
    char *image = NULL;
    ssize_t size = 0;
    if (w->fid >= 0) {
        if (rc == FXP_OK && (H5Fflush(w->fid, H5F_SCOPE_GLOBAL) < 0 ||
                             (size = H5Fget_file_image(w->fid, NULL, 0)) <= 0))
            rc = FXP_ERR(ctx, FXP_EIO, "cannot finish the HDF5 image of %s", w->path);
        if (rc == FXP_OK && !(image = malloc((size_t)size)))
            rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %zd bytes for the image of %s", size,
                         w->path);
        if (rc == FXP_OK && H5Fget_file_image(w->fid, image, (size_t)size) != size)
            rc = FXP_ERR(ctx, FXP_EIO, "cannot copy the HDF5 image of %s", w->path);
        if (rc == FXP_OK) fix_superblock_checksum((unsigned char *)image, (size_t)size);
        /* in memory: nothing to flush to disk, so the close cannot half-fail */
        if (H5Fclose(w->fid) < 0 && rc == FXP_OK)
            rc = FXP_ERR(ctx, FXP_EINTERNAL, "cannot close the in-memory HDF5 file of %s "
                         "(an object in it is still open)", w->path);
        w->fid = -1;
    }
    if (rc == FXP_OK && (write_all(w->fd, image, (size_t)size) < 0 || fsync(w->fd) < 0))
        rc = FXP_ERR(ctx, FXP_EIO, "cannot write %s (%zd bytes): %s", w->tmp, size, strerror(errno));
    free(image);
    if (w->fd >= 0 && close(w->fd) < 0 && rc == FXP_OK)
        rc = FXP_ERR(ctx, FXP_EIO, "cannot write %s: %s", w->tmp, strerror(errno));
    w->fd = -1;
    if (rc == FXP_OK && rename(w->tmp, w->path) < 0)
        rc = FXP_ERR(ctx, FXP_EIO, "cannot rename %s to %s: %s", w->tmp, w->path, strerror(errno));
    if (rc != FXP_OK) {
        if (w->tmp[0]) unlink(w->tmp);
        return rc;
    }
    /* the file is complete under its name; a failed directory sync only
     * weakens durability against power loss, so it is not an error */
    (void)sync_dir(w->path);
    return FXP_OK;
}

int fxp__h5_open(fxp_ctx *ctx, const char *path, hid_t *fid)
{
    struct stat st;
    if (!path || stat(path, &st) < 0)
        return FXP_ERR(ctx, FXP_EIO, "cannot read %s: %s", path ? path : "(null)",
                       path ? strerror(errno) : "no path");
    if (!S_ISREG(st.st_mode)) return FXP_ERR(ctx, FXP_EIO, "%s is not a regular file", path);
    if (++open_generation == 0) open_generation = 1;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) return FXP_ERR(ctx, FXP_EFORMAT, "%s is not an HDF5 file", path);
    *fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*fid < 0)
        return FXP_ERR(ctx, FXP_EFORMAT, "cannot open %s: the file is damaged or truncated", path);
    return FXP_OK;
}

hid_t fxp__h5_lcpl(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        H5Pclose(lcpl);
        return -1;
    }
    return lcpl;
}

hid_t fxp__h5_dcpl(int ndim, const hsize_t *dims, size_t elsize)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) return -1;
    herr_t r;
    if (ndim == 0) {
        r = H5Pset_layout(dcpl, H5D_COMPACT);
    } else {
        /* the whole dataset as one chunk, halving leading dimensions until
         * a chunk holds at most 1 MiB */
        hsize_t chunk[FXP_MAX_DIMS];
        double bytes = (double)elsize;
        for (int i = 0; i < ndim; i++) {
            chunk[i] = dims[i];
            bytes *= (double)dims[i];
        }
        for (int i = 0; i < ndim && bytes > (1 << 20); i++)
            while (chunk[i] > 1 && bytes > (1 << 20)) {
                bytes = bytes / (double)chunk[i] * (double)((chunk[i] + 1) / 2);
                chunk[i] = (chunk[i] + 1) / 2;
            }
        r = H5Pset_chunk(dcpl, ndim, chunk);
        if (r >= 0) r = H5Pset_fletcher32(dcpl);
    }
    if (r < 0) {
        H5Pclose(dcpl);
        return -1;
    }
    return dcpl;
}

/* Layout facts HDF5 1.10 trusts when reading and that a damaged file can
 * get wrong (both found by fuzzing, each a read past a heap buffer inside
 * H5Dread), checked here through the public API: nonzero if dset's layout
 * is inconsistent.
 *   - compact: the data kept in the object header must be exactly the
 *     dataspace's size;
 *   - chunked: every chunk dimension must be >= 1 and no larger than the
 *     dataset's maximum dimension where that is fixed (HDF5's own rule when
 *     creating a dataset; a larger chunk makes H5Dread copy a chunk's worth
 *     from a smaller decompressed buffer), so must every current dimension,
 *     and the chunk index must be sound
 *     (chunks_inconsistent);
 *   - numbers: an integer or floating-point element of 1 to 16 bytes (a
 *     damaged size has the same effect as a damaged chunk). */
/* The chunk index of a chunked dataset: at most one entry per position of
 * the chunk grid, each at a distinct, aligned position inside the dataset,
 * with a stored size that an unfiltered chunk must match exactly and a
 * filtered one cannot exceed by much (deflate's worst case is about 0.1%
 * more, plus Fletcher32's 4 bytes).  Nonzero if it is damaged (fuzzing found
 * entries repeating one position, over which H5Dread read past a buffer). */
static int chunks_inconsistent(hid_t dset, hid_t dcpl, hid_t space, int nd, const hsize_t *dims,
                               const hsize_t *chunk, size_t el)
{
    hsize_t n = 0, grid = 1, bytes = el;
    for (int i = 0; i < nd; i++) {
        grid *= (dims[i] + chunk[i] - 1) / chunk[i];
        bytes *= chunk[i];
    }
    if (H5Dget_num_chunks(dset, space, &n) < 0 || n > grid) return 1;
    if (n == 0) return 0;
    const int filtered = H5Pget_nfilters(dcpl) > 0;
    hsize_t *seen = malloc((size_t)n * (size_t)nd * sizeof *seen);
    int bad = !seen;
    for (hsize_t k = 0; !bad && k < n; k++) {
        hsize_t *off = seen + k * (hsize_t)nd, size = 0;
        unsigned mask = 0;
        haddr_t addr;
        bad = H5Dget_chunk_info(dset, space, k, off, &mask, &addr, &size) < 0 ||
              (filtered ? size > bytes + bytes / 512 + 64 : size != bytes);
        for (int i = 0; !bad && i < nd; i++) bad = off[i] % chunk[i] != 0 || off[i] >= dims[i];
        for (hsize_t j = 0; !bad && j < k; j++) /* a position twice (n is small in practice) */
            bad = !memcmp(seen + j * (hsize_t)nd, off, (size_t)nd * sizeof *off);
    }
    free(seen);
    return bad;
}

static int layout_inconsistent(hid_t dset)
{
    hid_t dcpl = H5Dget_create_plist(dset), space = H5Dget_space(dset), type = H5Dget_type(dset);
    int bad = dcpl < 0 || space < 0 || type < 0;
    if (!bad) {
        const H5T_class_t cls = H5Tget_class(type);
        const size_t el = H5Tget_size(type);
        if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && (el < 1 || el > 16)) bad = 1;
    }
    const H5D_layout_t layout = bad ? H5D_LAYOUT_ERROR : H5Pget_layout(dcpl);
    if (!bad && layout == H5D_COMPACT) {
        const hssize_t n = H5Sget_simple_extent_npoints(space);
        const size_t el = H5Tget_size(type);
        bad = n < 0 || el == 0 || H5Dget_storage_size(dset) != (hsize_t)n * el;
    } else if (!bad && layout == H5D_CHUNKED) {
        hsize_t dims[32], maxdims[32], chunk[32];
        const int nd = H5Sget_simple_extent_ndims(space);
        bad = nd < 0 || nd > 32 || H5Sget_simple_extent_dims(space, dims, maxdims) < 0 ||
              H5Pget_chunk(dcpl, nd, chunk) != nd;
        for (int i = 0; !bad && i < nd; i++)
            bad = chunk[i] < 1 || (maxdims[i] != H5S_UNLIMITED &&
                                   (chunk[i] > maxdims[i] || dims[i] > maxdims[i]));
        if (!bad) bad = chunks_inconsistent(dset, dcpl, space, nd, dims, chunk, H5Tget_size(type));
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    return bad;
}

int fxp__h5_read_all(hid_t dset, hid_t memtype, void *buf)
{
    if (layout_inconsistent(dset)) return -1;
    if (H5Dread(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) return 0;
    hid_t dcpl = H5Dget_create_plist(dset);
    unsigned flags = 0, conf = 0;
    size_t nelem = 0;
    const int fletcher = dcpl >= 0 && H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags,
                                                            &nelem, NULL, 0, NULL, &conf) >= 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (!fletcher) return -1;
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    int r = -1;
    if (dxpl >= 0 && H5Pset_edc_check(dxpl, H5Z_DISABLE_EDC) >= 0 &&
        H5Dread(dset, memtype, H5S_ALL, H5S_ALL, dxpl, buf) >= 0)
        r = FXP__H5_BADSUM; /* readable without the check: the data is damaged */
    if (dxpl >= 0) H5Pclose(dxpl);
    return r;
}

int fxp__h5_checksummed(hid_t dset)
{
    hid_t dcpl = H5Dget_create_plist(dset);
    if (dcpl < 0) return 0;
    unsigned flags = 0, conf = 0;
    size_t nelem = 0;
    int ok = H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nelem, NULL, 0, NULL,
                                  &conf) >= 0;
    if (!ok && H5Pget_layout(dcpl) == H5D_COMPACT) {
        H5O_info_t oi;
        ok = H5Oget_info(dset, &oi) >= 0 && oi.hdr.version >= 2; /* v2 headers have checksums */
    }
    H5Pclose(dcpl);
    return ok;
}

int fxp__h5_write_floats(fxp_ctx *ctx, hid_t loc, const char *name, int ndim, const int *shape,
                         const float *data, const char *path)
{
    hsize_t dims[FXP_MAX_DIMS];
    for (int i = 0; i < ndim; i++) dims[i] = (hsize_t)shape[i];
    int rc = FXP_OK;
    hid_t lcpl = fxp__h5_lcpl(), dcpl = fxp__h5_dcpl(ndim, dims, sizeof(float));
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dset = lcpl >= 0 && dcpl >= 0 && space >= 0
                     ? H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT)
                     : -1;
    if (dset < 0 || H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = FXP_ERR(ctx, FXP_EIO, "%s: cannot write dataset %s", path, name);
    if (dset >= 0) H5Dclose(dset);
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    return rc;
}

int fxp__h5_attr_write(fxp_ctx *ctx, hid_t obj, const fxp_attr *a, const char *path)
{
    hid_t type = -1, space = H5Screate(H5S_SCALAR), attr = -1;
    herr_t w = -1;
    if (a->type == FXP_ATTR_STRING) {
        type = H5Tcopy(H5T_C_S1);
        if (type >= 0 && H5Tset_size(type, H5T_VARIABLE) >= 0 && H5Tset_cset(type, H5T_CSET_UTF8) >= 0 &&
            (attr = H5Acreate2(obj, a->key, type, space, H5P_DEFAULT, H5P_DEFAULT)) >= 0) {
            const char *s = a->s ? a->s : "";
            w = H5Awrite(attr, type, &s);
        }
    } else if (a->type == FXP_ATTR_DOUBLE) {
        if ((attr = H5Acreate2(obj, a->key, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
            w = H5Awrite(attr, H5T_NATIVE_DOUBLE, &a->d);
    } else {
        if ((attr = H5Acreate2(obj, a->key, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
            w = H5Awrite(attr, H5T_NATIVE_INT64, &a->i);
    }
    if (attr >= 0) H5Aclose(attr);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return w < 0 ? FXP_ERR(ctx, FXP_EIO, "%s: cannot write attribute %s", path, a->key) : FXP_OK;
}

/* ---- global heap validation ------------------------------------------------
 * Variable-length strings (how we and h5py store text attributes) live in
 * the file's global heap collections.  HDF5 1.10 trusts the object sizes
 * inside a collection: a damaged size makes H5Aread copy past the heap
 * (memcpy of gigabytes) or loop forever (a zero size), which fuzzing found
 * at once.  Before reading such a string we walk every collection of the
 * file ourselves with bounds checks.  A collection (HDF5 format spec, "Global
 * Heap"): "GCOL", version 1, 3 reserved bytes, its total size (8 bytes,
 * >= 4096), then objects of 16-byte headers (index u16, references u16,
 * reserved u32, data size u64) and data padded to 8 bytes; index 0 is the
 * free space, whose size covers its header.  Only 8-byte lengths are
 * checked (what HDF5 writes by default).  "GCOL" followed by a 1 inside
 * other data would be taken for a damaged collection: a chance of about
 * 2^-40 per byte of the file, which would make a text attribute unreadable,
 * never a crash. */
static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* 1 if the collection starting at c (avail bytes to the end of the file) is
 * sound or is not a collection (HDF5 refuses any version but 1), 0 if it is
 * damaged.  HDF5 ignores the reserved bytes, so we do too (fuzzing found a
 * collection with non-zero reserved bytes and a damaged object that HDF5
 * loaded).  A size beyond the file or too small for one object counts as
 * damage. */
static int heap_sound(const unsigned char *c, uint64_t avail)
{
    if (avail < 16) return 0;
    if (c[4] != 1) return 1;
    const uint64_t size = le64(c + 8);
    if (size < 32 || size > avail) return 0;
    for (uint64_t p = 16; p < size;) {
        if (size - p < 16) return 1; /* a tail too small for an object: free space */
        const unsigned idx = (unsigned)c[p] | (unsigned)c[p + 1] << 8;
        const uint64_t len = le64(c + p + 8);
        if (len > size) return 0;
        const uint64_t need = idx ? 16 + ((len + 7) & ~(uint64_t)7) : len;
        if (need == 0 || need > size - p) return 0;
        p += need;
    }
    return 1;
}

/* Nonzero if every global heap collection of the file at path is sound. */
static int global_heaps_sound(const char *path)
{
    if (heap_check.generation == open_generation && open_generation != 0) return heap_check.ok;
    struct stat st;
    FILE *f = fopen(path, "rb");
    int ok = f && fstat(fileno(f), &st) == 0 && st.st_size > 0;
    unsigned char *all = ok ? malloc((size_t)st.st_size) : NULL;
    ok = ok && all && fread(all, 1, (size_t)st.st_size, f) == (size_t)st.st_size;
    for (off_t i = 0; ok && i + 4 <= st.st_size; i++)
        if (all[i] == 'G' && !memcmp(all + i, "GCOL", 4))
            ok = heap_sound(all + i, (uint64_t)(st.st_size - i));
    free(all);
    if (f) fclose(f);
    heap_check.generation = open_generation;
    heap_check.ok = ok;
    return ok;
}

int fxp__h5_attr_sane(hid_t attr, hid_t type)
{
    hid_t space = H5Aget_space(attr);
    const hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space >= 0) H5Sclose(space);
    if (n != 1) return 0; /* our readers take one value: more would overrun it */
    const H5T_class_t cls = H5Tget_class(type);
    const size_t el = H5Tget_size(type);
    if (cls == H5T_INTEGER || cls == H5T_FLOAT) return el >= 1 && el <= 16;
    if (cls == H5T_STRING && H5Tis_variable_str(type) <= 0)
        return el >= 1 && el <= ((size_t)1 << 20) && H5Aget_storage_size(attr) == el;
    return 1;
}

int fxp__h5_attr_text(fxp_ctx *ctx, hid_t obj, const char *key, char *buf, size_t size,
                      const char *path)
{
    if (H5Aexists(obj, key) <= 0)
        return FXP_ERR(ctx, FXP_ENOTFOUND, "%s: no attribute \"%s\"", path, key);
    int rc = FXP_OK;
    hid_t attr = H5Aopen(obj, key, H5P_DEFAULT), type = attr >= 0 ? H5Aget_type(attr) : -1;
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (type >= 0 && !fxp__h5_attr_sane(attr, type)) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: attribute %s is not a single value of a sane size "
                     "(damaged file?)", path, key);
    } else if (cls == H5T_STRING) {
        if (H5Tis_variable_str(type) > 0 && !global_heaps_sound(path)) {
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read attribute %s: the file's global heap "
                         "(where text is stored) is damaged", path, key);
        } else if (H5Tis_variable_str(type) > 0) {
            char *s = NULL;
            hid_t mem = H5Tcopy(type); /* same character set: no conversion */
            if (H5Aread(attr, mem, &s) < 0 || !s)
                rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read attribute %s", path, key);
            else if (snprintf(buf, size, "%s", s) >= (int)size)
                rc = FXP_ERR(ctx, FXP_EINVAL, "%s: attribute %s is longer than %zu", path, key, size - 1);
            if (s) H5free_memory(s);
            H5Tclose(mem);
        } else {
            size_t n = H5Tget_size(type);
            char *s = calloc(n + 1, 1);
            hid_t mem = H5Tcopy(type);
            H5Tset_size(mem, n + 1);
            H5Tset_strpad(mem, H5T_STR_NULLTERM);
            if (!s || H5Aread(attr, mem, s) < 0)
                rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read attribute %s", path, key);
            else if (snprintf(buf, size, "%s", s) >= (int)size)
                rc = FXP_ERR(ctx, FXP_EINVAL, "%s: attribute %s is longer than %zu", path, key, size - 1);
            free(s);
            H5Tclose(mem);
        }
    } else if (cls == H5T_FLOAT || cls == H5T_INTEGER) {
        double d;
        if (H5Aread(attr, H5T_NATIVE_DOUBLE, &d) < 0)
            rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read attribute %s", path, key);
        else
            snprintf(buf, size, "%.17g", d);
    } else {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: attribute %s is neither text nor a number", path, key);
    }
    if (type >= 0) H5Tclose(type);
    if (attr >= 0) H5Aclose(attr);
    return rc;
}

int fxp__h5_exists(hid_t loc, const char *name)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", name) >= (int)sizeof buf) return 0;
    for (char *p = buf; (p = strchr(p + 1, '/'));) { /* each parent must exist */
        *p = '\0';
        if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
        *p = '/';
    }
    return H5Lexists(loc, buf, H5P_DEFAULT) > 0;
}

int fxp__h5_shape(hid_t dset, int *dims)
{
    hid_t space = H5Dget_space(dset);
    if (space < 0) return -1;
    int nd = H5Sget_simple_extent_ndims(space);
    hsize_t d[32];
    if (nd < 0 || nd > FXP_MAX_DIMS || H5Sget_simple_extent_dims(space, d, NULL) < 0) nd = -1;
    for (int i = 0; i >= 0 && i < nd; i++) dims[i] = d[i] > 0x7fffffff ? -1 : (int)d[i];
    H5Sclose(space);
    return nd;
}

/* Names of the objects at the root, comma separated, for error messages. */
typedef struct name_list {
    char buf[256];
    int more;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)g;
    (void)info;
    name_list *l = op;
    size_t len = strlen(l->buf);
    if (len + strlen(name) + 8 >= sizeof l->buf) {
        l->more = 1;
        return 1; /* stop: the message says "..." */
    }
    snprintf(l->buf + len, sizeof l->buf - len, "%s%s", len ? ", " : "", name);
    return 0;
}

void fxp__h5_root_names(hid_t fid, char *buf, size_t size)
{
    name_list have = { "", 0 };
    H5Literate(fid, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &have);
    snprintf(buf, size, "%s%s", have.buf[0] ? have.buf : "nothing", have.more ? ", ..." : "");
}

const char *fxp__h5_class_name(H5T_class_t cls)
{
    switch (cls) {
    case H5T_INTEGER: return "integers";
    case H5T_FLOAT: return "floating-point numbers";
    case H5T_STRING: return "strings";
    case H5T_COMPOUND: return "a compound type";
    case H5T_ENUM: return "an enum type";
    case H5T_ARRAY: return "an array type";
    case H5T_VLEN: return "variable-length sequences";
    case H5T_OPAQUE: return "opaque data";
    case H5T_BITFIELD: return "bit fields";
    case H5T_REFERENCE: return "references";
    default: return "an unknown type";
    }
}

int fxp__h5_open_dataset(fxp_ctx *ctx, hid_t fid, const char *name, const char *path,
                         hid_t *dset, hid_t *type)
{
    *dset = *type = -1;
    H5O_info_t oi;
    if (H5Oget_info_by_name(fid, name, &oi, H5P_DEFAULT) < 0)
        return FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read the header of \"%s\" (damaged file?)", path, name);
    if (oi.type != H5O_TYPE_DATASET)
        return FXP_ERR(ctx, FXP_EFORMAT, "%s: \"%s\" is a %s, not a dataset", path, name,
                       oi.type == H5O_TYPE_GROUP ? "group" : "named type");
    if ((*dset = H5Dopen2(fid, name, H5P_DEFAULT)) < 0 || (*type = H5Dget_type(*dset)) < 0) {
        if (*dset >= 0) H5Dclose(*dset);
        *dset = *type = -1;
        return FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot open dataset \"%s\" (damaged file?)", path, name);
    }
    return FXP_OK;
}

int fxp__h5_check_nonempty(fxp_ctx *ctx, const int *dims, int nd, const char *name, const char *path)
{
    for (int i = 0; i < nd; i++)
        if (dims[i] < 1)
            return FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" is empty (dimension %d is %d)", path,
                           name, i, dims[i]);
    return FXP_OK;
}

int fxp__h5_read_tensor(fxp_ctx *ctx, hid_t fid, const char *name, int allow_int,
                        fxp_tensor *out, const char *path)
{
    hid_t dset = -1, type = -1;
    int rc = FXP_OK;
    memset(out, 0, sizeof *out);
    if (!fxp__h5_exists(fid, name)) {
        char have[256];
        fxp__h5_root_names(fid, have, sizeof have);
        rc = FXP_ERR(ctx, FXP_ENOTFOUND, "%s has no dataset \"%s\" (its root holds: %s)", path,
                     name, have);
        goto out;
    }
    FXP_TRY(fxp__h5_open_dataset(ctx, fid, name, path, &dset, &type));
    const H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_FLOAT && !(allow_int && cls == H5T_INTEGER)) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" holds %s; expected %s", path, name,
                     fxp__h5_class_name(cls), allow_int ? "numbers" : "floating-point numbers (float32 or float64)");
        goto out;
    }
    int dims[FXP_MAX_DIMS];
    const int nd = fxp__h5_shape(dset, dims);
    if (nd < 1) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" has rank %s (1..%d supported)", path, name,
                     nd == 0 ? "0 (a scalar)" : "too large or unreadable", FXP_MAX_DIMS);
        goto out;
    }
    FXP_TRY(fxp__h5_check_nonempty(ctx, dims, nd, name, path));
    /* A crafted header can declare terabytes in a small file; deflate
     * compresses by at most about 1032:1, so more than that (plus 1 MiB of
     * unwritten chunks' fill) is refused before allocating. */
    double declared = sizeof(float);
    for (int i = 0; i < nd; i++) declared *= dims[i];
    hsize_t fsize = 0;
    if (H5Fget_filesize(fid, &fsize) < 0 || declared > 1100.0 * (double)fsize + (1 << 20)) {
        rc = FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset \"%s\" declares %.0f bytes, more than a "
                     "%llu-byte file can hold (damaged file?)", path, name, declared,
                     (unsigned long long)fsize);
        goto out;
    }
    if ((rc = fxp_tensor_alloc(ctx, out, nd, dims)) < 0) goto out;
    const int r = fxp__h5_read_all(dset, H5T_NATIVE_FLOAT, out->data);
    if (r < 0) {
        fxp_tensor_release(out);
        rc = r == FXP__H5_BADSUM
                 ? FXP_ERR(ctx, FXP_EFORMAT, "%s: dataset %s fails its checksum (the file is "
                           "damaged)", path, name)
                 : FXP_ERR(ctx, FXP_EFORMAT, "%s: cannot read dataset \"%s\" (damaged or "
                           "truncated file?)", path, name);
        goto out;
    }
    const int64_t n = fxp_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(out->data[i])) {
            const double v = out->data[i];
            fxp_tensor_release(out);
            rc = FXP_ERR(ctx, FXP_ENUMERIC, "%s: dataset \"%s\" holds %s at flat index %lld%s", path,
                         name, isnan(v) ? "NaN" : "Inf", (long long)i,
                         isnan(v) ? "" : " (or a value too large for float32)");
            goto out;
        }
out:
    if (type >= 0) H5Tclose(type);
    if (dset >= 0) H5Dclose(dset);
    return rc;
}
