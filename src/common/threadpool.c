/* Thread pool: one blocking parallel-for at a time (see include/nnedge/threadpool.h).
 *
 * Protocol. A run publishes (fn, ctx, n_tasks), resets the task counter `next` and the
 * count `pending` of workers still busy, then bumps the generation counter `gen`. Workers
 * wait for `gen` to change (spinning for SPIN_NS, then sleeping on cv_work), claim task
 * indices from `next` until it passes n_tasks, and decrement `pending`. The caller claims
 * tasks too, then waits for `pending` to reach 0 (spin, then cv_done). Every worker takes
 * part in every run, so a run cannot start before all workers have left the previous one.
 *
 * Sleeping without lost wake-ups, without taking the mutex on the fast path: a sleeper
 * increments `sleepers` and then re-reads `gen` (under `mu`); the waker bumps `gen` and then
 * reads `sleepers`. With sequentially consistent atomics at least one of the two sees the
 * other's write, so either the sleeper does not sleep or the waker broadcasts under `mu`
 * (which it can only take once the sleeper is inside pthread_cond_wait). `caller_waiting`
 * and `pending` pair up the same way for the completion signal.
 *
 * Pre-wake (nne_threadpool_prewake): bumps `hint` and broadcasts to sleepers the same way; a
 * sleeper that sees `hint` change spins PREWAKE_SPIN_NS for `gen`, then sleeps again. `hint`
 * only moves the wake-up earlier: a lost hint costs latency, never a run.
 *
 * Memory ordering: the run's fields are written before the seq_cst bump of `gen` and read
 * after the worker's load of it; a worker's task outputs are written before its seq_cst
 * decrement of `pending` and the caller reads them after seeing `pending == 0`. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "nnedge/threadpool.h"

/* How long an idle thread spins before sleeping, in ns: long enough to bridge the serial
 * gap between two back-to-back kernels, short enough not to burn a core when idle. */
#define SPIN_NS 50000
/* How long a worker woken by nne_threadpool_prewake spins for the run that follows, in ns:
 * it covers the serial preparation a caller does between the hint and the run (conv2d_5
 * int8's per-call weight packing: 50-70 us, docs/perf.md). */
#define PREWAKE_SPIN_NS 300000

typedef struct nne_worker {
    struct nne_threadpool *pool;
    int id; /* 1 .. n_threads-1 */
    pthread_t tid;
} nne_worker;

struct nne_threadpool {
    int n_threads;
    int n_started; /* workers successfully started */
    nne_worker *workers;
    pthread_mutex_t run_mu; /* serializes nne_threadpool_run callers */
    pthread_mutex_t mu;     /* with cv_work / cv_done: sleeping and waking only */
    pthread_cond_t cv_work, cv_done;
    atomic_uint gen;     /* bumped once per run (and once to stop) */
    atomic_uint hint;    /* bumped by nne_threadpool_prewake */
    atomic_int sleepers; /* workers inside the cv_work wait loop */
    atomic_int pending;  /* workers not yet done with the current run */
    atomic_int caller_waiting;
    atomic_int next; /* next unclaimed task index */
    atomic_int stop;
    /* The current run (see the memory-ordering note above). */
    nne_threadpool_fn fn;
    void *ctx;
    int n_tasks;
    uint64_t spin_ns; /* SPIN_NS, or NNEDGE_SPIN_US from the environment at creation */
};

/* The pool whose task this thread is running (workers: always their pool), for nested runs. */
static _Thread_local nne_threadpool *tls_pool;
static _Thread_local int tls_thread;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_tasks(nne_threadpool *p, int thread) {
    nne_threadpool_fn fn = p->fn;
    void *ctx = p->ctx;
    int n = p->n_tasks;
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= n) break;
        fn(ctx, t, thread);
    }
}

/* Spin until `gen` differs from `seen` (returns true) or spin_ns have passed. */
static bool spin_for_run(nne_threadpool *p, unsigned seen, uint64_t spin_ns, unsigned *g) {
    uint64_t t0 = nne_time_ns();
    for (unsigned i = 1;; i++) {
        cpu_relax();
        *g = atomic_load(&p->gen);
        if (*g != seen) return true;
        if ((i & 63) == 0 && nne_time_ns() - t0 > spin_ns) return false;
    }
}

/* Wait until `gen` differs from `seen`; returns the new value. A sleeper woken by a pre-wake
 * (`hint` changed, gen not) spins PREWAKE_SPIN_NS for the announced run, then sleeps again. */
static unsigned wait_for_run(nne_threadpool *p, unsigned seen) {
    unsigned g = atomic_load(&p->gen);
    if (g != seen) return g;
    if (spin_for_run(p, seen, p->spin_ns, &g)) return g;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add(&p->sleepers, 1);
        const unsigned h = atomic_load(&p->hint);
        while ((g = atomic_load(&p->gen)) == seen && atomic_load(&p->hint) == h)
            pthread_cond_wait(&p->cv_work, &p->mu);
        atomic_fetch_sub(&p->sleepers, 1);
        pthread_mutex_unlock(&p->mu);
        if (g != seen) return g;
        if (spin_for_run(p, seen, PREWAKE_SPIN_NS, &g)) return g;
    }
}

static void *worker_main(void *arg) {
    nne_worker *w = arg;
    nne_threadpool *p = w->pool;
    tls_pool = p;
    tls_thread = w->id;
    unsigned seen = 0; /* gen starts at 0 and is only bumped after all workers exist */
    for (;;) {
        seen = wait_for_run(p, seen);
        if (atomic_load(&p->stop)) break;
        run_tasks(p, w->id);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

static void wait_for_workers(nne_threadpool *p) {
    uint64_t t0 = nne_time_ns();
    for (unsigned i = 1; atomic_load(&p->pending) != 0; i++) {
        cpu_relax();
        if ((i & 63) == 0 && nne_time_ns() - t0 > SPIN_NS) {
            pthread_mutex_lock(&p->mu);
            atomic_store(&p->caller_waiting, 1);
            while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->cv_done, &p->mu);
            atomic_store(&p->caller_waiting, 0);
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
}

/* Wake everyone for the new value of gen (run or stop). */
static void bump_generation(nne_threadpool *p) {
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }
}

void nne_threadpool_prewake(nne_threadpool *pool) {
    /* Same handshake as bump_generation: a sleeper re-reads `hint` after registering. */
    if (!pool || pool->n_started == 0 || tls_pool == pool) return;
    atomic_fetch_add(&pool->hint, 1);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv_work);
        pthread_mutex_unlock(&pool->mu);
    }
}

static void stop_workers(nne_threadpool *p) {
    if (p->n_started == 0) return;
    atomic_store(&p->stop, 1);
    bump_generation(p);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i].tid, NULL);
    p->n_started = 0;
}

static void destroy(nne_threadpool *p) {
    stop_workers(p);
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_work);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    nne_free(p->workers);
    nne_free(p);
}

nne_status nne_threadpool_create(int n_threads, nne_threadpool **out) {
    if (!out) return nne_error(NNE_ERR_INVALID_ARG, "threadpool: out is NULL");
    *out = NULL;
    if (n_threads < 1 || n_threads > NNE_THREADPOOL_MAX_THREADS)
        return nne_error(NNE_ERR_INVALID_ARG, "threadpool: %d threads (want 1..%d)", n_threads,
                         NNE_THREADPOOL_MAX_THREADS);
    nne_threadpool *p = nne_calloc(1, sizeof *p);
    if (!p) return NNE_ERR_NOMEM;
    p->n_threads = n_threads;
    p->spin_ns = SPIN_NS;
    const char *e = getenv("NNEDGE_SPIN_US");
    if (e && *e) {
        char *end = NULL;
        const unsigned long long us = strtoull(e, &end, 10);
        if (end && !*end && us <= 10000000ull) p->spin_ns = (uint64_t)us * 1000u;
    }
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->hint, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->caller_waiting, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->stop, 0);
    if (n_threads > 1) {
        p->workers = nne_calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            destroy(p);
            return NNE_ERR_NOMEM;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].id = i + 1;
            if (pthread_create(&p->workers[i].tid, NULL, worker_main, &p->workers[i]) != 0) {
                destroy(p);
                return nne_error(NNE_ERR_INTERNAL, "threadpool: cannot start thread %d of %d",
                                 i + 2, n_threads);
            }
            p->n_started++;
        }
    }
    *out = p;
    return NNE_OK;
}

void nne_threadpool_free(nne_threadpool *pool) {
    if (pool) destroy(pool);
}

int nne_threadpool_threads(const nne_threadpool *pool) { return pool ? pool->n_threads : 1; }

void nne_threadpool_run(nne_threadpool *pool, int n_tasks, nne_threadpool_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!pool || pool->n_threads == 1 || n_tasks == 1 || tls_pool == pool) {
        int thread = pool && tls_pool == pool ? tls_thread : 0;
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, thread);
        return;
    }
    /* `next` may overshoot n_tasks by one per thread. */
    if (n_tasks > INT_MAX - NNE_THREADPOOL_MAX_THREADS)
        n_tasks = INT_MAX - NNE_THREADPOOL_MAX_THREADS;
    pthread_mutex_lock(&pool->run_mu);
    nne_threadpool *saved_pool = tls_pool;
    int saved_thread = tls_thread;
    tls_pool = pool;
    tls_thread = 0;
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    atomic_store(&pool->next, 0);
    atomic_store(&pool->pending, pool->n_threads - 1);
    bump_generation(pool);
    run_tasks(pool, 0);
    wait_for_workers(pool);
    tls_pool = saved_pool;
    tls_thread = saved_thread;
    pthread_mutex_unlock(&pool->run_mu);
}

int nne_threadpool_default_threads(void) {
    const char *e = getenv("NNEDGE_THREADS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end == 0 && v >= 1 && v <= NNE_THREADPOOL_MAX_THREADS) return (int)v;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > NNE_THREADPOOL_MAX_THREADS) n = NNE_THREADPOOL_MAX_THREADS;
    return (int)n;
}

static nne_threadpool *default_pool;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void) {
    if (nne_threadpool_create(nne_threadpool_default_threads(), &default_pool) != NNE_OK)
        default_pool = NULL;
}

nne_threadpool *nne_threadpool_default(void) {
    pthread_once(&default_once, default_init);
    return default_pool;
}
