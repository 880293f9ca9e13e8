/* libflowexp: data-parallel training over MPI (optional).
 *
 * K processes ("ranks") each hold a whole copy of the model and each takes a
 * shard of every global batch: rank r runs the forward and fxp_tape_backward
 * on its examples, then fxp_dist_grad_mean (or fxp_dist_grad_weighted)
 * replaces its gradient block by the average over the ranks, and every rank
 * runs the same optimizer step.  A typical step:
 *
 *     fxp_dist_shard(B, size, rank, &off, &n);            // my examples
 *     fxp_params_zero_grad(ps);
 *     ... log_prob of examples [off, off+n), loss = -mean / nodes ...
 *     fxp_tape_backward(t, loss, NULL);
 *     fxp_dist_grad_weighted(d, ps, n);                    // or _mean if K | B
 *     fxp_optim_step(opt, NULL);
 *
 * At the start: build the model on every rank, run data-dependent
 * initialisations (actnorm) on rank 0 with the GLOBAL first batch (a training
 * forward), then fxp_dist_bcast_params copies rank 0's parameters and layer
 * state to all ranks (and checks that every rank built the same layout).
 * RNG states, run state and, on resume, optimizer moments
 * (fxp_optim_m / fxp_optim_v) go through fxp_dist_bcast.
 *
 * Availability.  The functions exist in every build of the library, so a
 * program compiled against one build links against any other.  In a build
 * without MPI (meson -Dmpi=disabled, or MPI not found) fxp_dist_available()
 * returns 0, fxp_dist_new fails with FXP_EUNSUPPORTED and so does every
 * function taking a handle (there can be none); fxp_dist_shard, rank and size
 * work.  `pkg-config --variable=mpi flowexp` prints the pkg-config package of
 * the MPI the library was built with ("ompi-c" for Open MPI), or "none".
 *
 * The communicator.  This header does not include <mpi.h>, so it compiles
 * without MPI: fxp_dist_new takes a POINTER to the caller's MPI_Comm.
 * Include <mpi.h> before this header (or before flowexp.h) to also get the
 * typed wrapper fxp_dist_new_comm(ctx, MPI_COMM_WORLD, &d).  The application
 * must use the MPI the library was built with: MPI_Comm is a pointer in Open
 * MPI and an int in MPICH, and their libraries are not interchangeable.
 *
 * MPI's life cycle belongs to the application: it calls
 * MPI_Init_thread(..., MPI_THREAD_FUNNELED, ...) before fxp_dist_new (the
 * library calls MPI only from the thread that calls fxp_dist_*, never from
 * inside OpenMP regions, so FUNNELED suffices) and MPI_Finalize after
 * fxp_dist_free.  One rank per node with OpenMP threads, or one rank per core
 * with one thread, both work; set the context's thread count to the cores
 * each rank owns.
 *
 * Collectives.  Every function taking a handle except fxp_dist_rank and
 * fxp_dist_size is collective over the handle's communicator: all ranks
 * must call it, in the same order, with the same root, count and type, and
 * parameter sets of the same layout.  A handle is not thread-safe; use one
 * handle per thread if several threads communicate (each needs its own
 * fxp_dist_new, which duplicates the communicator).
 *
 * Errors and faults.  fxp_dist_new duplicates the caller's communicator and
 * sets MPI_ERRORS_RETURN on the copy, so an MPI error inside the library is
 * returned as FXP_EIO with MPI's own message ("MPI_Bcast failed on rank 1 of
 * 2: MPI_ERR_TRUNCATE: message truncated"), never an abort.  Argument errors
 * that depend on data exchanged in the call (shard counts, parameter
 * layouts) are detected after the exchange, so every rank returns the same
 * status.  But a collective cannot complete while a peer is missing: if one
 * rank fails OUTSIDE a collective (a bad file, out of memory, a NaN it alone
 * saw, a kill), its peers block in their next collective.  The library never
 * aborts, so the APPLICATION must then end the job: the failing rank prints
 * its message and calls MPI_Abort(MPI_COMM_WORLD, code), which makes mpirun
 * or srun kill every rank and exit non-zero.  Where all ranks reach the same
 * point, fxp_dist_agree lets them learn of a failure and exit together
 * without MPI_Abort.  A local failure inside a collective (FXP_ENOMEM for its
 * scratch, a NULL argument) is such a one-rank failure too.
 *
 * Determinism.  MPI_Allreduce may add the ranks' contributions in any order
 * (it depends on the implementation, the message size and the process
 * placement), and float addition is not associative, so it can give
 * different bits on different ranks or in different runs.  The reductions
 * here use MPI only to MOVE bytes (MPI_Alltoallv, MPI_Allgather(v),
 * MPI_Bcast: no arithmetic in MPI) and do all arithmetic in the library, in
 * one fixed expression per element:
 *
 *     out[i] = (T) ( ( c_0 x_0[i] + c_1 x_1[i] + ... + c_{K-1} x_{K-1}[i] ) * s )
 *
 * evaluated in double from left to right in rank order (ranks with c_r = 0
 * are left out), rounded once to the element type T.  Large blocks are
 * split into K contiguous chunks; rank r computes chunk r from the K
 * received copies of it and an allgather hands the finished chunks to
 * everyone (reduce-scatter + allgather, each rank sending and receiving
 * about 2 (K-1)/K of the block); small blocks (at most 64 KiB received per
 * rank) are allgathered whole and every rank computes every element, with
 * the same expression.  Each output element is therefore a fixed function of
 * the K inputs, computed once and copied, or computed identically on every
 * rank: all ranks hold the same bits, whatever MPI's algorithms,
 * the network or the chunking, and a rerun with the same K (and the same
 * per-rank thread count, which the gradients themselves depend on) repeats
 * them.  The combining loop runs on the context's threads, one element per
 * iteration, so its thread count does not change the result.
 *
 * With the averaged gradient identical on every rank, an elementwise
 * optimizer (fxp_optim_step) keeps the trainable parameters bit-identical on
 * every rank after every step.  Layer state that a training forward updates
 * from the parameters alone (spectral-norm power iterations) stays identical
 * as long as every rank runs the same library and OpenBLAS code path with
 * the same thread count (homogeneous nodes); on mixed CPUs re-broadcast it
 * now and then with fxp_dist_bcast on fxp_params_data(ps, FXP_PARAM_STATE).
 */
#ifndef FLOWEXP_DIST_H
#define FLOWEXP_DIST_H

#include "flowexp/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;
struct fxp_params;
typedef struct fxp_dist fxp_dist;

/* 1 if the library was built with MPI, 0 otherwise. Thread-safe. */
FXP_API int fxp_dist_available(void);

/* Create a handle on a duplicate of the communicator *comm (an MPI_Comm;
 * collective over it).  ctx receives the handle's error messages and sets
 * the threads of its combining loops; both ctx and the caller's
 * communicator must outlive the handle.
 * Returns FXP_OK and *out; FXP_EINVAL for NULL arguments, MPI_COMM_NULL or
 * an intercommunicator; FXP_ESTATE if MPI is not initialised or already
 * finalised; FXP_EIO if MPI fails; FXP_EUNSUPPORTED without MPI.  The
 * duplicate gets MPI_ERRORS_RETURN (see "Errors" above); the caller's
 * communicator keeps its own handler, so an invalid *comm still meets that
 * handler (MPI_ERRORS_ARE_FATAL on MPI_COMM_WORLD by default). */
FXP_API int fxp_dist_new(struct fxp_ctx *ctx, const void *comm, fxp_dist **out);

/* Free the handle and its communicator (collective); before MPI_Finalize.
 * fxp_dist_free(NULL) is a no-op. */
FXP_API void fxp_dist_free(fxp_dist *d);

/* This process's rank 0..size-1 and the number of ranks (0 and 1 for a
 * NULL handle). Not collective. */
FXP_API int fxp_dist_rank(const fxp_dist *d);
FXP_API int fxp_dist_size(const fxp_dist *d);

/* The shard of n items (e.g. the examples of a global batch) that `rank` of
 * `size` processes takes: items [*offset, *offset + *count), the first
 * n mod size ranks taking one item more than the others; a rank's count may
 * be 0 when n < size.  The same split is used for the chunks of
 * the reductions.  Requires n >= 0 and 0 <= rank < size (otherwise *offset =
 * *count = 0).  Pure; works without MPI. */
FXP_API void fxp_dist_shard(int64_t n, int size, int rank, int64_t *offset, int64_t *count);

/* Average the trainable gradient block of ps (fxp_params_grad_data,
 * fxp_params_size(ps, FXP_PARAM_TRAINABLE) floats) over the ranks, in place,
 * in one fused reduction:
 *     g[i] <- (float)( (g_0[i] + g_1[i] + ... + g_{K-1}[i]) * (1.0 / K) ),
 * summed in double in rank order (see "Determinism").  Every rank ends with
 * the same bits.  When every rank's loss is the mean over the same number of
 * examples this is the gradient of the mean over the global batch; for
 * uneven shards use fxp_dist_grad_weighted.  NaN and Inf propagate (every
 * rank then sees them, so fxp_optim_step fails on every rank alike).
 * The block size must equal one that fxp_dist_bcast_params or
 * fxp_dist_params_identical checked across the ranks on this handle
 * (FXP_ESTATE otherwise: the size is not exchanged here, and a mismatch
 * would silently combine unrelated numbers).  With K = 1 the gradients are
 * left unchanged.  FXP_EIO on MPI errors; FXP_ENOMEM if the receive scratch
 * (about the block's size, kept by the handle for later calls) cannot be
 * had.  Cost: two collectives moving about 2 (K-1)/K of the block per rank,
 * plus one pass over K/size of the block. */
FXP_API int fxp_dist_grad_mean(fxp_dist *d, struct fxp_params *ps);

/* The weighted average for uneven shards: rank r passes count_r >= 0, the
 * number of examples its gradient is the mean over, and every rank gets
 *     g[i] <- (float)( (c_0 g_0[i] + ... + c_{K-1} g_{K-1}[i]) * (1.0 / C) ),
 *     C = c_0 + ... + c_{K-1},
 * in double in rank order, ranks with c_r = 0 left out (their gradients are
 * ignored, even if not finite).  This is the gradient of the mean loss over
 * the global batch of C examples: it equals the single-process gradient of
 * that batch up to float rounding.  It is NOT bitwise the single-process
 * gradient in general: one process accumulates the per-example terms in its
 * kernels' order (across the whole batch, inside BLAS), the ranks in shards
 * and then across shards, and float sums depend on the order.  What IS
 * guaranteed: every rank gets the same bits, a rerun with the same K, shards
 * and thread count repeats them, and K = 1 gives the single-process gradient
 * exactly.  The counts and block sizes are exchanged first (one small
 * allgather), so a negative count, C = 0 or C > 2^53 gives FXP_EINVAL and
 * different block sizes give FXP_EMISMATCH, on every rank alike.
 * FXP_EIO / FXP_ENOMEM as fxp_dist_grad_mean. */
FXP_API int fxp_dist_grad_weighted(fxp_dist *d, struct fxp_params *ps, int64_t count);

/* Copy `root`'s parameters AND layer state (both flat blocks of ps: the
 * trainable values and FXP_PARAM_STATE, e.g. spectral-norm vectors and
 * actnorm-initialised flags) to every rank; gradients are not touched.
 * First checks that every rank's ps has root's layout (entry names, kinds
 * and shapes, hashed, and the block sizes): FXP_EMISMATCH on every rank
 * naming the first rank that differs.  Records the trainable size as checked
 * for fxp_dist_grad_mean.  FXP_EINVAL for a root outside 0..size-1;
 * FXP_EIO on MPI errors. */
FXP_API int fxp_dist_bcast_params(fxp_dist *d, struct fxp_params *ps, int root);

/* Element types for fxp_dist_bcast. */
typedef enum fxp_dist_type {
    FXP_DIST_FLOAT = 0,
    FXP_DIST_DOUBLE = 1,
    FXP_DIST_INT = 2,
    FXP_DIST_INT64 = 3,
    FXP_DIST_UINT64 = 4,  /* e.g. fxp_rng's seed and counter */
    FXP_DIST_BYTE = 5     /* any plain-data struct or string */
} fxp_dist_type;

/* Copy count elements of `type` at buf from `root` to every rank (buf is
 * input on root, output elsewhere).  count must be the same on every rank:
 * a receiver that expects fewer elements than root sends gets FXP_EIO
 * (MPI_ERR_TRUNCATE); one that expects more is not detected.  Any count is
 * accepted (large buffers go in pieces).  FXP_EINVAL for a bad root or type,
 * or a NULL buf with count > 0; FXP_EIO on MPI errors. */
FXP_API int fxp_dist_bcast(fxp_dist *d, void *buf, size_t count, fxp_dist_type type, int root);

/* Sum n doubles over the ranks, in place, on every rank:
 *     x[i] <- x_0[i] + x_1[i] + ... + x_{K-1}[i]   (rank order, in double),
 * e.g. the summed log-likelihoods and example counts of an evaluation, so
 * that every rank (and every rerun with the same K) gets the same total.
 * FXP_EINVAL for a NULL x with n > 0; FXP_EIO on MPI errors; FXP_ENOMEM. */
FXP_API int fxp_dist_sum(fxp_dist *d, double *x, size_t n);

/* *identical = 1 if every rank's ps holds exactly root 0's bytes in both
 * blocks (trainable and state; compared bitwise, so a NaN matches its own
 * bits), else 0; the same answer on every rank.  Costs one broadcast of
 * both blocks (a test and debugging aid, not for every step of a large
 * model).  Checks the layout as fxp_dist_bcast_params does (FXP_EMISMATCH)
 * and records the trainable size as checked.  FXP_EIO, FXP_ENOMEM. */
FXP_API int fxp_dist_params_identical(fxp_dist *d, const struct fxp_params *ps,
                                      int *identical);

/* Learn whether any rank failed: every rank passes its own status (0 or a
 * negative FXP_E* code) and gets *failed_rank = the lowest rank whose status
 * was negative, or -1 if none was.  For points every rank reaches (after
 * loading data, after a validation) so that all ranks can stop together
 * instead of blocking; the failing rank reports its own message.  Returns
 * FXP_OK; FXP_EIO if the exchange itself fails; FXP_EINVAL (after taking
 * part in the exchange) for a NULL failed_rank. */
FXP_API int fxp_dist_agree(fxp_dist *d, int status, int *failed_rank);

#ifdef __cplusplus
}
#endif
#endif /* FLOWEXP_DIST_H */

/* The typed constructor, defined when <mpi.h> was included before this
 * header (outside the include guard, so including this header again after
 * <mpi.h> also defines it). */
#if defined(MPI_VERSION) && !defined(FLOWEXP_DIST_MPI_H)
#define FLOWEXP_DIST_MPI_H
#ifdef __cplusplus
extern "C" {
#endif
/* fxp_dist_new on the communicator `comm` (e.g. MPI_COMM_WORLD). */
static inline int fxp_dist_new_comm(struct fxp_ctx *ctx, MPI_Comm comm, fxp_dist **out)
{
    return fxp_dist_new(ctx, &comm, out);
}
#ifdef __cplusplus
}
#endif
#endif
