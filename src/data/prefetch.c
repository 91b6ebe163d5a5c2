/* Background batch prefetch: one producer thread, a ring of `depth` batch buffers. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "nnedge/dataset.h"

struct nne_prefetcher {
    const nne_dataset *ds;
    nne_crop_opts opts;
    uint64_t first;
    int32_t depth;
    float **slot;        /* [depth] batch buffers */
    size_t batch_elems;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    uint64_t produced;   /* batches filled */
    uint64_t handed;     /* batches handed to the caller */
    uint64_t released;   /* batches the caller is done with */
    bool stop;
    nne_status error;
    char error_msg[512];
};

static void *producer(void *arg) {
    nne_prefetcher *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->produced - p->released >= (uint64_t)p->depth)
            pthread_cond_wait(&p->not_full, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        uint64_t k = p->produced;
        pthread_mutex_unlock(&p->mu);
        /* The slot is ours: the consumer only reads slots of batches already produced. */
        nne_status s = nne_dataset_crop_batch(p->ds, &p->opts, p->first + k,
                                              p->slot[k % (uint64_t)p->depth]);
        pthread_mutex_lock(&p->mu);
        if (s) {
            p->error = s;
            snprintf(p->error_msg, sizeof p->error_msg, "%s", nne_last_error());
            pthread_cond_broadcast(&p->not_empty);
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->produced++;
        pthread_cond_broadcast(&p->not_empty);
        pthread_mutex_unlock(&p->mu);
    }
}

void nne_prefetcher_free(nne_prefetcher *p) {
    if (!p) return;
    if (p->thread_started) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->not_full);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->not_full);
    pthread_cond_destroy(&p->not_empty);
    for (int32_t i = 0; p->slot && i < p->depth; i++) nne_aligned_free(p->slot[i]);
    nne_free(p->slot);
    nne_free(p);
}

nne_status nne_prefetcher_create(const nne_dataset *ds, const nne_crop_opts *o,
                                 uint64_t first_batch, int32_t depth, nne_prefetcher **out) {
    *out = NULL;
    if (depth < 1 || depth > 64)
        return nne_error(NNE_ERR_INVALID_ARG, "prefetch depth %d outside [1, 64]", depth);
    if (o->batch < 1 || o->height < 1 || o->width < 1)
        return nne_error(NNE_ERR_INVALID_ARG, "crop batch %d of %dx%d", o->batch, o->height,
                         o->width);
    nne_prefetcher *p = nne_calloc(1, sizeof *p);
    if (!p) return NNE_ERR_NOMEM;
    p->ds = ds;
    p->opts = *o;
    p->first = first_batch;
    p->depth = depth;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->not_full, NULL);
    pthread_cond_init(&p->not_empty, NULL);
    size_t elems = 0, bytes = 0;
    if (!nne_size_mul((size_t)o->batch * (size_t)o->height, (size_t)o->width * 3, &elems) ||
        !nne_size_mul(elems, sizeof(float), &bytes)) {
        nne_prefetcher_free(p);
        return nne_error(NNE_ERR_LIMIT, "prefetch batch too large");
    }
    p->batch_elems = elems;
    p->slot = nne_calloc((size_t)depth, sizeof *p->slot);
    if (!p->slot) {
        nne_prefetcher_free(p);
        return NNE_ERR_NOMEM;
    }
    for (int32_t i = 0; i < depth; i++) {
        if (!(p->slot[i] = nne_aligned_alloc(bytes))) {
            nne_prefetcher_free(p);
            return NNE_ERR_NOMEM;
        }
    }
    if (pthread_create(&p->thread, NULL, producer, p) != 0) {
        nne_prefetcher_free(p);
        return nne_error(NNE_ERR_INTERNAL, "cannot start the prefetch thread");
    }
    p->thread_started = true;
    *out = p;
    return NNE_OK;
}

nne_status nne_prefetcher_next(nne_prefetcher *p, const float **batch, uint64_t *index) {
    pthread_mutex_lock(&p->mu);
    p->released = p->handed; /* the previously returned batch is free again */
    pthread_cond_broadcast(&p->not_full);
    while (p->produced <= p->handed && p->error == NNE_OK)
        pthread_cond_wait(&p->not_empty, &p->mu);
    if (p->produced <= p->handed) {
        nne_status s = p->error;
        pthread_mutex_unlock(&p->mu);
        return nne_error(s, "%s", p->error_msg);
    }
    *batch = p->slot[p->handed % (uint64_t)p->depth];
    *index = p->first + p->handed;
    p->handed++;
    pthread_mutex_unlock(&p->mu);
    return NNE_OK;
}
