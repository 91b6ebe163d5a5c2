/* common/threadpool: every task runs exactly once on a valid thread, runs are reusable and
 * never deadlock, nested and concurrent runs are safe, reductions done by the rules of
 * threadpool.h are bitwise identical for every thread count. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nnedge/threadpool.h"
#include "testutil.h"

#define MAX_TASKS 4096

typedef struct count_ctx {
    atomic_int calls[MAX_TASKS];
    atomic_int bad_thread;
    int n_threads;
} count_ctx;

static void count_fn(void *vctx, int task, int thread) {
    count_ctx *x = vctx;
    atomic_fetch_add(&x->calls[task], 1);
    if (thread < 0 || thread >= x->n_threads) atomic_store(&x->bad_thread, 1);
}

static void check_once(nne_threadpool *pool, int n_tasks) {
    static count_ctx x;
    for (int i = 0; i < MAX_TASKS; i++) atomic_store(&x.calls[i], 0);
    atomic_store(&x.bad_thread, 0);
    x.n_threads = nne_threadpool_threads(pool);
    nne_threadpool_run(pool, n_tasks, count_fn, &x);
    int wrong = 0;
    for (int i = 0; i < MAX_TASKS; i++) wrong += atomic_load(&x.calls[i]) != (i < n_tasks);
    CHECK_MSG(wrong == 0, "%d tasks of %d ran a wrong number of times (%d threads)", wrong, n_tasks,
              x.n_threads);
    CHECK(atomic_load(&x.bad_thread) == 0);
}

static void test_each_task_once(void) {
    for (int t = 1; t <= 4; t++) {
        nne_threadpool *pool = NULL;
        CHECK_OK(nne_threadpool_create(t, &pool));
        CHECK(nne_threadpool_threads(pool) == t);
        const int sizes[] = {0, 1, 2, 3, 4, 5, 7, 64, 1000, MAX_TASKS};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) check_once(pool, sizes[i]);
        nne_threadpool_free(pool);
    }
    check_once(NULL, 100); /* NULL pool: serial */
    CHECK(nne_threadpool_threads(NULL) == 1);
}

/* Tiny runs back to back: exercises the spin and sleep paths and the generation handshake. */
static void add_fn(void *vctx, int task, int thread) {
    atomic_fetch_add((atomic_long *)vctx, task + 1);
}

static void test_many_small_runs(void) {
    for (int t = 2; t <= 4; t++) {
        nne_threadpool *pool = NULL;
        CHECK_OK(nne_threadpool_create(t, &pool));
        atomic_long sum;
        atomic_init(&sum, 0);
        long want = 0;
        for (int r = 0; r < 20000; r++) {
            int n = 1 + r % 5;
            nne_threadpool_run(pool, n, add_fn, &sum);
            want += (long)n * (n + 1) / 2;
        }
        CHECK(atomic_load(&sum) == want);
        /* Let the workers fall asleep, then run again (the condition-variable path). */
        for (int r = 0; r < 5; r++) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
            nne_threadpool_run(pool, 8, add_fn, &sum);
            want += 36;
        }
        CHECK(atomic_load(&sum) == want);
        nne_threadpool_free(pool);
    }
}

/* A float reduction following the rules: per-task partials, summed in task order. */
typedef struct reduce_ctx {
    const float *x;
    int n, per;
    float partial[256];
} reduce_ctx;

static void reduce_fn(void *vctx, int task, int thread) {
    reduce_ctx *r = vctx;
    int lo = task * r->per, hi = lo + r->per < r->n ? lo + r->per : r->n;
    float s = 0.0f;
    for (int i = lo; i < hi; i++) s += r->x[i] * r->x[i];
    r->partial[task] = s;
}

static float reduce(nne_threadpool *pool, const float *x, int n) {
    reduce_ctx r = {.x = x, .n = n, .per = (n + 255) / 256};
    int tasks = (n + r.per - 1) / r.per;
    nne_threadpool_run(pool, tasks, reduce_fn, &r);
    float s = 0.0f;
    for (int t = 0; t < tasks; t++) s += r.partial[t];
    return s;
}

static void test_determinism(void) {
    enum { N = 100003 };
    float *x = malloc(N * sizeof *x);
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) x[i] = (float)(nne_test_rng_uniform(&rng) * 2 - 1);
    float want = reduce(NULL, x, N);
    for (int t = 1; t <= 4; t++) {
        nne_threadpool *pool = NULL;
        CHECK_OK(nne_threadpool_create(t, &pool));
        for (int rep = 0; rep < 20; rep++) {
            float got = reduce(pool, x, N);
            CHECK(memcmp(&got, &want, sizeof got) == 0);
        }
        nne_threadpool_free(pool);
    }
    free(x);
}

/* Nested: a task runs a loop on the same pool; it must run serially with its own index. */
typedef struct nested_ctx {
    nne_threadpool *pool;
    atomic_int inner_calls;
    atomic_int bad;
} nested_ctx;

typedef struct inner_arg {
    nested_ctx *outer;
    int thread;
} inner_arg;

static void inner_fn(void *vctx, int task, int thread) {
    inner_arg *a = vctx;
    if (thread != a->thread) atomic_store(&a->outer->bad, 1);
    atomic_fetch_add(&a->outer->inner_calls, 1);
}

static void outer_fn(void *vctx, int task, int thread) {
    nested_ctx *x = vctx;
    inner_arg a = {x, thread};
    nne_threadpool_run(x->pool, 3, inner_fn, &a);
}

static void test_nested(void) {
    nested_ctx x;
    CHECK_OK(nne_threadpool_create(3, &x.pool));
    atomic_init(&x.inner_calls, 0);
    atomic_init(&x.bad, 0);
    nne_threadpool_run(x.pool, 10, outer_fn, &x);
    CHECK(atomic_load(&x.inner_calls) == 30);
    CHECK(atomic_load(&x.bad) == 0);
    nne_threadpool_free(x.pool);
}

/* Two threads hammering one pool: runs are serialized, none is lost. */
typedef struct hammer_arg {
    nne_threadpool *pool;
    atomic_long *sum;
} hammer_arg;

static void *hammer(void *varg) {
    hammer_arg *h = varg;
    for (int r = 0; r < 2000; r++) nne_threadpool_run(h->pool, 4, add_fn, h->sum);
    return NULL;
}

static void test_concurrent_callers(void) {
    nne_threadpool *pool = NULL;
    CHECK_OK(nne_threadpool_create(2, &pool));
    atomic_long sum;
    atomic_init(&sum, 0);
    hammer_arg h = {pool, &sum};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, hammer, &h);
    pthread_create(&t2, NULL, hammer, &h);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK(atomic_load(&sum) == 2L * 2000 * 10);
    nne_threadpool_free(pool);
}

static void test_create_and_default(void) {
    nne_threadpool *pool = (nne_threadpool *)1;
    CHECK_STATUS(nne_threadpool_create(0, &pool), NNE_ERR_INVALID_ARG);
    CHECK(pool == NULL);
    CHECK_STATUS(nne_threadpool_create(NNE_THREADPOOL_MAX_THREADS + 1, &pool), NNE_ERR_INVALID_ARG);
    nne_threadpool_free(NULL);

    const char *saved = getenv("NNEDGE_THREADS");
    char *copy = saved ? strdup(saved) : NULL;
    setenv("NNEDGE_THREADS", "3", 1);
    CHECK(nne_threadpool_default_threads() == 3);
    setenv("NNEDGE_THREADS", "0", 1); /* invalid: falls back to the CPU count */
    int ncpu = nne_threadpool_default_threads();
    CHECK(ncpu >= 1 && ncpu <= NNE_THREADPOOL_MAX_THREADS);
    setenv("NNEDGE_THREADS", "2x", 1);
    CHECK(nne_threadpool_default_threads() == ncpu);
    if (copy) {
        setenv("NNEDGE_THREADS", copy, 1);
        free(copy);
    } else {
        unsetenv("NNEDGE_THREADS");
    }
    nne_threadpool *d = nne_threadpool_default();
    CHECK(d != NULL && d == nne_threadpool_default());
    CHECK(nne_threadpool_threads(d) == nne_threadpool_default_threads());
    check_once(d, 100);
}

/* Pre-wake: a run right after it, a run after the woken workers went back to sleep (past
 * the 300 us spin), repeated hints, hints inside a task (no-op) and on NULL / 1-thread pools.
 * Every run must still run each task once (a lost wake-up would hang the test). */
static void prewake_nested_fn(void *ctx, int task, int thread) {
    nne_threadpool_prewake(ctx);
    (void)task, (void)thread;
}

static void test_prewake(void) {
    nne_threadpool_prewake(NULL);
    nne_threadpool *one = NULL, *pool = NULL;
    CHECK_OK(nne_threadpool_create(1, &one));
    CHECK_OK(nne_threadpool_create(3, &pool));
    nne_threadpool_prewake(one);
    check_once(one, 7);
    for (int i = 0; i < 40; i++) {
        const struct timespec ts = {0, (i % 4) * 250000L}; /* 0 .. 0.75 ms */
        nanosleep(&ts, NULL);
        nne_threadpool_prewake(pool);
        if (i % 3 == 0) nne_threadpool_prewake(pool);
        nanosleep(&ts, NULL);
        check_once(pool, 1 + i * 37 % 300);
    }
    nne_threadpool_run(pool, 16, prewake_nested_fn, pool);
    check_once(pool, 100);
    nne_threadpool_free(one);
    nne_threadpool_free(pool);
}

/* NNEDGE_SPIN_US: 0 (workers sleep at once), a long spin, and values that are ignored; every
 * run still runs each task once, with pauses between runs that outlast a short spin. */
static void test_spin_env(void) {
    const char *values[] = {"0", "3000", "x1", "", "99999999999"};
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
        setenv("NNEDGE_SPIN_US", values[v], 1);
        nne_threadpool *pool = NULL;
        CHECK_OK(nne_threadpool_create(2, &pool));
        for (int i = 0; i < 12; i++) {
            const struct timespec ts = {0, (i % 3) * 400000L}; /* 0 .. 0.8 ms */
            nanosleep(&ts, NULL);
            check_once(pool, 1 + i * 53 % 200);
        }
        nne_threadpool_free(pool);
    }
    unsetenv("NNEDGE_SPIN_US");
}

int main(void) {
    NNE_RUN(test_each_task_once);
    NNE_RUN(test_many_small_runs);
    NNE_RUN(test_determinism);
    NNE_RUN(test_nested);
    NNE_RUN(test_concurrent_callers);
    NNE_RUN(test_create_and_default);
    NNE_RUN(test_prewake);
    NNE_RUN(test_spin_env);
    return nne_test_summary();
}
