/* Sessions: bind an inferred graph to a backend with one planned activation arena. */
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/qops.h"

struct nne_session {
    nne_graph *g;
    const nne_backend *be;
    void *state;
    uint8_t *arena;
};

const nne_backend *nne_backend_by_name(const char *name) {
    const nne_backend *all[] = {nne_backend_cpu(),      nne_backend_cpu_exact(),
                                nne_backend_cpu_bf16(), nne_backend_cpu_ref(),
                                nne_backend_cpu_s8(),   nne_backend_cpu_s8_ref()};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (name && strcmp(all[i]->name, name) == 0) return all[i];
    return NULL;
}

nne_status nne_session_create(nne_graph *g, const nne_backend *be, nne_session **out) {
    *out = NULL;
    nne_status s = nne_graph_plan(g);
    if (s) return s;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if ((s = be->supports_node(g, &g->nodes[i]))) return s;
    nne_session *ss = nne_calloc(1, sizeof *ss);
    if (!ss) return NNE_ERR_NOMEM;
    ss->g = g;
    ss->be = be;
    ss->arena = nne_aligned_alloc(g->arena_size ? g->arena_size : NNE_ALIGN);
    if (!ss->arena) {
        nne_free(ss);
        return NNE_ERR_NOMEM;
    }
    memset(ss->arena, 0, g->arena_size);
    if ((s = be->compile(g, &ss->state))) {
        nne_aligned_free(ss->arena);
        nne_free(ss);
        return s;
    }
    *out = ss;
    return NNE_OK;
}

void nne_session_free(nne_session *s) {
    if (!s) return;
    if (s->be && s->be->free) s->be->free(s->state);
    nne_aligned_free(s->arena);
    nne_free(s);
}

void *nne_session_tensor_data(nne_session *s, int32_t tensor) {
    if (tensor < 0 || tensor >= s->g->n_tensors) return NULL;
    nne_tensor *t = &s->g->tensors[tensor];
    if (t->kind == NNE_TENSOR_CONSTANT) return t->data;
    if (t->arena_offset < 0) return NULL;
    return s->arena + t->arena_offset;
}

void *nne_session_input(nne_session *s, int32_t i) {
    if (i < 0 || i >= s->g->n_inputs) return NULL;
    return nne_session_tensor_data(s, s->g->inputs[i]);
}

const void *nne_session_output(const nne_session *s, int32_t i) {
    if (i < 0 || i >= s->g->n_outputs) return NULL;
    return nne_session_tensor_data((nne_session *)s, s->g->outputs[i]);
}

const nne_tensor *nne_session_input_tensor(const nne_session *s, int32_t i) {
    if (i < 0 || i >= s->g->n_inputs) return NULL;
    return &s->g->tensors[s->g->inputs[i]];
}

const nne_tensor *nne_session_output_tensor(const nne_session *s, int32_t i) {
    if (i < 0 || i >= s->g->n_outputs) return NULL;
    return &s->g->tensors[s->g->outputs[i]];
}

nne_status nne_session_run(nne_session *s) {
    if (!s->g->planned)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "graph '%s' was modified after the session was "
                         "created",
                         s->g->name);
    return s->be->run(s->state, s->g, s->arena);
}

nne_status nne_session_profile(nne_session *s, nne_node_profile *prof) {
    if (!s->be->profile)
        return nne_error(NNE_ERR_UNSUPPORTED, "backend '%s' has no profiler", s->be->name);
    return s->be->profile(s->state, s->g, prof);
}

size_t nne_session_arena_size(const nne_session *s) { return s->g->arena_size; }

/* Checks shared by the f32 input/output helpers; NULL (with the error set) on failure. */
static const nne_tensor *io_tensor(const nne_session *s, bool input, int32_t i, size_t count,
                                   nne_status *st) {
    const nne_tensor *t = input ? nne_session_input_tensor(s, i) : nne_session_output_tensor(s, i);
    if (!t) {
        *st = nne_error(NNE_ERR_INVALID_ARG, "session has no %s %d", input ? "input" : "output",
                        (int)i);
        return NULL;
    }
    if ((size_t)nne_shape_numel(&t->shape) != count) {
        *st = nne_error(NNE_ERR_INVALID_ARG, "tensor '%s' has %lld elements, not %zu", t->name,
                        (long long)nne_shape_numel(&t->shape), count);
        return NULL;
    }
    if (t->dtype != NNE_F32 && !((t->dtype == NNE_S8 || t->dtype == NNE_U8) && t->quant.count == 1)) {
        *st = nne_error(NNE_ERR_UNSUPPORTED,
                        "tensor '%s' is %s; f32 conversion needs f32, or s8/u8 with per-tensor "
                        "quantization",
                        t->name, nne_dtype_name(t->dtype));
        return NULL;
    }
    return t;
}

nne_status nne_session_set_input_f32(nne_session *s, int32_t i, const float *x, size_t count) {
    nne_status st = NNE_OK;
    const nne_tensor *t = io_tensor(s, true, i, count, &st);
    if (!t) return st;
    void *d = nne_session_input(s, i);
    if (t->dtype == NNE_F32)
        memcpy(d, x, count * sizeof *x);
    else if (t->dtype == NNE_S8)
        nne_quantize_f32_s8__ref(count, x, t->quant.scale[0], t->quant.zero_point[0],
                                 t->quant.pow2, d);
    else
        nne_quantize_f32_u8__ref(count, x, t->quant.scale[0], t->quant.zero_point[0],
                                 t->quant.pow2, d);
    return NNE_OK;
}

nne_status nne_session_get_output_f32(const nne_session *s, int32_t i, float *y, size_t count) {
    nne_status st = NNE_OK;
    const nne_tensor *t = io_tensor(s, false, i, count, &st);
    if (!t) return st;
    const void *d = nne_session_output(s, i);
    if (t->dtype == NNE_F32)
        memcpy(y, d, count * sizeof *y);
    else if (t->dtype == NNE_S8)
        nne_dequantize_s8_f32__ref(count, d, t->quant.scale[0], t->quant.zero_point[0], y);
    else
        nne_dequantize_u8_f32__ref(count, d, t->quant.scale[0], t->quant.zero_point[0], y);
    return NNE_OK;
}
