/* nnedge: a small thread pool for deterministic parallel-for loops.
 *
 * The pool runs one blocking parallel-for at a time: nne_threadpool_run(pool, n, fn, ctx)
 * calls fn(ctx, task, thread) once for every task in [0, n) and returns when all calls have
 * returned. The calling thread takes part as thread 0; the pool's n_threads - 1 workers are
 * threads 1 .. n_threads - 1. Tasks are handed out dynamically (a shared atomic counter), so
 * which thread runs which task, and in what order, depends on scheduling. Results must not:
 *
 *  - every task writes outputs disjoint from every other task's (no shared accumulators);
 *  - a reduction is done by giving each task its own partial result slot (indexed by
 *    `task`, not `thread`) and summing the slots in task order on the caller afterwards;
 *  - `thread` (in [0, n_threads)) is only for per-thread scratch memory that a task fully
 *    initialises before use, never for anything that reaches an output.
 *
 * Following these rules a computation is bitwise identical for any thread count and any
 * schedule (the GEMM in gemm.h is built this way and tested for it).
 *
 * Waiting: idle workers spin briefly (50 us of `pause`) for the next run, then sleep on a
 * condition variable, so back-to-back runs cost about a microsecond and an idle pool costs no
 * CPU. NNEDGE_SPIN_US (read when a pool is created, 0..10,000,000) sets the spin, as
 * GOMP_SPINCOUNT does for libgomp: a longer spin spares a run that follows after a pause the
 * sleeping workers' wake-up (up to about 1 ms on a virtual machine; docs/perf.md), at the
 * price of a busy core while the pool is idle.
 *
 * Thread safety: runs on one pool are serialized (concurrent callers take turns). A task may
 * call nne_threadpool_run on the same pool again: the nested loop then runs serially on the
 * calling thread, passing that thread's index, so per-thread scratch stays private.
 * A NULL pool is valid everywhere and means "serial on the caller".
 */
#ifndef NNEDGE_THREADPOOL_H
#define NNEDGE_THREADPOOL_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNE_THREADPOOL_MAX_THREADS 256

typedef struct nne_threadpool nne_threadpool;

/* One task: `task` in [0, n_tasks), `thread` in [0, nne_threadpool_threads(pool)). */
typedef void (*nne_threadpool_fn)(void *ctx, int task, int thread);

/* Create a pool of n_threads threads in total, the caller included (1 <= n_threads <=
 * NNE_THREADPOOL_MAX_THREADS; 1 starts no worker thread). Errors: NNE_ERR_INVALID_ARG,
 * NNE_ERR_NOMEM, NNE_ERR_INTERNAL (a thread could not be started). */
nne_status nne_threadpool_create(int n_threads, nne_threadpool **out);

/* Stop and join the workers, release the pool. NULL is a no-op. Must not be called while a
 * run is in progress. Never free the pool returned by nne_threadpool_default(). */
void nne_threadpool_free(nne_threadpool *pool);

/* Number of threads (caller included); 1 for a NULL pool. */
int nne_threadpool_threads(const nne_threadpool *pool);

/* Blocking parallel-for: fn(ctx, task, thread) for task in [0, n_tasks). n_tasks <= 0 is a
 * no-op. With a NULL pool, one thread or a nested call, tasks run in increasing order on the
 * calling thread. */
void nne_threadpool_run(nne_threadpool *pool, int n_tasks, nne_threadpool_fn fn, void *ctx);

/* Hint that a run on this pool follows soon (the caller has serial work to do first, e.g.
 * packing weights): sleeping workers wake now and spin for it (up to about 300 us), so the
 * run does not wait for their wake-up (40-60 us measured under load, docs/perf.md). Changes
 * no result: which thread runs which task is dynamic anyway (above). No-op for a NULL or
 * 1-thread pool and inside a task of the pool. */
void nne_threadpool_prewake(nne_threadpool *pool);

/* The process-wide pool, created on first use with nne_threadpool_default_threads()
 * threads. Returns NULL (serial execution) if it cannot be created. Lives until exit. */
nne_threadpool *nne_threadpool_default(void);

/* The default thread count: the environment variable NNEDGE_THREADS when it is an integer
 * in [1, NNE_THREADPOOL_MAX_THREADS], else the number of online CPUs (clamped to that
 * range). */
int nne_threadpool_default_threads(void);

#ifdef __cplusplus
}
#endif
#endif
