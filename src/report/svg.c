/* A small SVG writer and bar chart (svg.h). Output is deterministic: fixed attribute order,
 * numbers as "%.2f" in the C locale. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nnedge/svg.h"

#define SVG_MAX_DEPTH 16

struct nne_svg {
    char *buf;
    size_t len, cap;
    nne_status err; /* first failure, sticky */
    int depth;      /* open groups */
};

static void put(nne_svg *s, const char *p, size_t n) {
    if (s->err) return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                s->err = nne_error(NNE_ERR_NOMEM, "svg: document too large");
                return;
            }
            cap *= 2;
        }
        char *nb = nne_realloc_array(s->buf, cap, 1);
        if (!nb) {
            s->err = NNE_ERR_NOMEM;
            return;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = 0;
}

static void putf(nne_svg *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void putf(nne_svg *s, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        if (!s->err) s->err = nne_error(NNE_ERR_INTERNAL, "svg: element too long");
        return;
    }
    put(s, tmp, (size_t)n);
}

/* XML-escaped text (attribute-safe too). Control characters other than tab/newline are
 * not allowed in XML 1.0 and are dropped. */
static void put_escaped(nne_svg *s, const char *t) {
    for (; t && *t; t++) {
        switch (*t) {
        case '&':
            put(s, "&amp;", 5);
            break;
        case '<':
            put(s, "&lt;", 4);
            break;
        case '>':
            put(s, "&gt;", 4);
            break;
        case '"':
            put(s, "&quot;", 6);
            break;
        case '\'':
            put(s, "&#39;", 5);
            break;
        default:
            if ((unsigned char)*t >= 0x20 || *t == '\t' || *t == '\n') put(s, t, 1);
        }
    }
}

/* Finite coordinates only: a NaN in an attribute makes an invalid document. */
static double fin(double v) { return isfinite(v) ? v : 0.0; }

nne_status nne_svg_begin(double width, double height, nne_svg **out) {
    *out = NULL;
    if (!(width > 0) || !(height > 0) || !isfinite(width) || !isfinite(height))
        return nne_error(NNE_ERR_INVALID_ARG, "svg: size %gx%g must be positive", width, height);
    nne_svg *s = nne_calloc(1, sizeof *s);
    if (!s) return NNE_ERR_NOMEM;
    putf(s,
         "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
         "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
         width, height, width, height);
    putf(s, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", width,
         height);
    if (s->err) {
        nne_status e = s->err;
        nne_svg_free(s);
        return e;
    }
    *out = s;
    return NNE_OK;
}

void nne_svg_free(nne_svg *svg) {
    if (!svg) return;
    nne_free(svg->buf);
    nne_free(svg);
}

nne_status nne_svg_finish(nne_svg *svg, char **out, size_t *size) {
    *out = NULL;
    *size = 0;
    if (!svg) return nne_error(NNE_ERR_INVALID_ARG, "svg: NULL document");
    if (svg->depth != 0 && !svg->err)
        svg->err = nne_error(NNE_ERR_INVALID_ARG, "svg: %d group(s) left open", svg->depth);
    put(svg, "</svg>\n", 7);
    nne_status e = svg->err;
    if (!e) {
        *out = svg->buf;
        *size = svg->len;
        svg->buf = NULL;
    }
    nne_svg_free(svg);
    return e;
}

static void put_title(nne_svg *s, const char *title) {
    put(s, "<title>", 7);
    put_escaped(s, title);
    put(s, "</title>", 8);
}

static void put_class(nne_svg *s, const char *cls) {
    if (!cls) return;
    put(s, " class=\"", 8);
    put_escaped(s, cls);
    put(s, "\"", 1);
}

void nne_svg_rect(nne_svg *svg, double x, double y, double w, double h, const char *fill,
                  const char *cls, const char *title) {
    putf(svg, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"", fin(x), fin(y),
         fin(w) > 0 ? fin(w) : 0, fin(h) > 0 ? fin(h) : 0);
    put(svg, " fill=\"", 7);
    put_escaped(svg, fill ? fill : "black");
    put(svg, "\"", 1);
    put_class(svg, cls);
    if (title) {
        put(svg, ">", 1);
        put_title(svg, title);
        put(svg, "</rect>\n", 8);
    } else {
        put(svg, "/>\n", 3);
    }
}

void nne_svg_circle(nne_svg *svg, double cx, double cy, double r, const char *fill, const char *cls,
                    const char *title) {
    putf(svg, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\"", fin(cx), fin(cy),
         fin(r) > 0 ? fin(r) : 0);
    put(svg, " fill=\"", 7);
    put_escaped(svg, fill ? fill : "black");
    put(svg, "\"", 1);
    put_class(svg, cls);
    if (title) {
        put(svg, ">", 1);
        put_title(svg, title);
        put(svg, "</circle>\n", 10);
    } else {
        put(svg, "/>\n", 3);
    }
}

void nne_svg_line(nne_svg *svg, double x1, double y1, double x2, double y2, const char *stroke,
                  double width, const char *dash) {
    putf(svg, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke-width=\"%.2f\"",
         fin(x1), fin(y1), fin(x2), fin(y2), fin(width));
    put(svg, " stroke=\"", 9);
    put_escaped(svg, stroke ? stroke : "black");
    put(svg, "\"", 1);
    if (dash) {
        put(svg, " stroke-dasharray=\"", 19);
        put_escaped(svg, dash);
        put(svg, "\"", 1);
    }
    put(svg, "/>\n", 3);
}

void nne_svg_text(nne_svg *svg, double x, double y, const char *text, double size,
                  const char *anchor, double rotate) {
    putf(svg, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%.2f\"", fin(x), fin(y), fin(size));
    if (anchor) {
        put(svg, " text-anchor=\"", 14);
        put_escaped(svg, anchor);
        put(svg, "\"", 1);
    }
    if (rotate != 0 && isfinite(rotate))
        putf(svg, " transform=\"rotate(%.2f %.2f %.2f)\"", rotate, fin(x), fin(y));
    put(svg, ">", 1);
    put_escaped(svg, text);
    put(svg, "</text>\n", 8);
}

void nne_svg_group_begin(nne_svg *svg, const char *id, const char *cls) {
    if (svg->depth >= SVG_MAX_DEPTH) {
        if (!svg->err)
            svg->err = nne_error(NNE_ERR_LIMIT, "svg: groups nested deeper than %d", SVG_MAX_DEPTH);
        return;
    }
    svg->depth++;
    put(svg, "<g", 2);
    if (id) {
        put(svg, " id=\"", 5);
        put_escaped(svg, id);
        put(svg, "\"", 1);
    }
    put_class(svg, cls);
    put(svg, ">\n", 2);
}

void nne_svg_group_end(nne_svg *svg) {
    if (svg->depth <= 0) {
        if (!svg->err) svg->err = nne_error(NNE_ERR_INVALID_ARG, "svg: no group to end");
        return;
    }
    svg->depth--;
    put(svg, "</g>\n", 5);
}

/* ---- Bar chart ---------------------------------------------------------------------------- */

/* 1, 2 or 5 x 10^k, the smallest not below raw. */
static double nice_step(double raw) {
    if (!(raw > 0) || !isfinite(raw)) return 1.0;
    const double mag = pow(10.0, floor(log10(raw)));
    const double norm = raw / mag;
    return (norm <= 1.0 ? 1.0 : norm <= 2.0 ? 2.0 : norm <= 5.0 ? 5.0 : 10.0) * mag;
}

nne_status nne_svg_bar_chart(nne_svg *svg, const nne_bar_chart *c, double x, double y, double w,
                             double h) {
    if (!svg || !c || c->n < 1 || !c->labels || !c->values)
        return nne_error(NNE_ERR_INVALID_ARG, "svg: bar chart needs n >= 1, labels and values");
    if (svg->err) return svg->err;
    const int dec = c->decimals < 0 ? 0 : c->decimals > 6 ? 6 : c->decimals;

    /* Range and ticks. */
    double lo, hi, step;
    if (c->y_min != c->y_max) {
        if (!isfinite(c->y_min) || !isfinite(c->y_max) || c->y_max < c->y_min)
            return nne_error(NNE_ERR_INVALID_ARG, "svg: bad axis range [%g, %g]", c->y_min,
                             c->y_max);
        lo = c->y_min;
        hi = c->y_max;
        step = nice_step((hi - lo) / 5.0);
    } else {
        double vmin = INFINITY, vmax = -INFINITY;
        for (int32_t i = 0; i < c->n; i++) {
            const double v[2] = {c->values[i], c->markers ? c->markers[i] : NAN};
            for (int k = 0; k < 2; k++)
                if (isfinite(v[k])) {
                    vmin = fmin(vmin, v[k]);
                    vmax = fmax(vmax, v[k]);
                }
        }
        if (!isfinite(vmin))
            return nne_error(NNE_ERR_INVALID_ARG, "svg: bar chart has no finite value");
        double lo0 = c->zoom ? vmin : fmin(0.0, vmin), hi0 = c->zoom ? vmax : fmax(0.0, vmax);
        if (!(hi0 > lo0)) {
            const double d = fabs(hi0) > 0 ? fabs(hi0) * 0.1 : 1.0;
            if (c->zoom || lo0 < 0) lo0 -= d;
            hi0 += d;
        }
        step = nice_step((hi0 - lo0) / 5.0);
        lo = floor(lo0 / step) * step;
        if (c->zoom && lo >= vmin) lo -= step; /* keep the smallest bar visible */
        hi = ceil(hi0 / step) * step;
        if (!(hi > lo)) hi = lo + step;
    }

    /* Layout. */
    const double top = y + (c->title ? 26.0 : 8.0) + (c->bar_label || c->marker_label ? 18.0 : 0.0);
    const double left = x + 64.0, right = x + w - 12.0, bottom = y + h - 58.0;
    if (!(right > left + 10) || !(bottom > top + 10))
        return nne_error(NNE_ERR_INVALID_ARG, "svg: bar chart area %gx%g is too small", w, h);
    const double pw = right - left, ph = bottom - top;
#define YPOS(v) (bottom - ((fmin(fmax((v), lo), hi) - lo) / (hi - lo)) * ph)
    char buf[512];

    nne_svg_group_begin(svg, NULL, "bar-chart");
    if (c->title) nne_svg_text(svg, x + w / 2, y + 18.0, c->title, 15.0, "middle", 0);
    if (c->bar_label || c->marker_label) {
        double lx = left;
        const double ly = y + (c->title ? 26.0 : 8.0) + 9.0;
        if (c->bar_label) {
            nne_svg_rect(svg, lx, ly - 8, 12, 10, c->bar_fill ? c->bar_fill : "#4c72b0", NULL,
                         NULL);
            nne_svg_text(svg, lx + 16, ly + 1, c->bar_label, 11.0, "start", 0);
            lx += 24 + 6.5 * (double)strlen(c->bar_label);
        }
        if (c->marker_label && c->markers) {
            nne_svg_circle(svg, lx + 6, ly - 3, 4, c->marker_fill ? c->marker_fill : "#dd8452",
                           NULL, NULL);
            nne_svg_text(svg, lx + 16, ly + 1, c->marker_label, 11.0, "start", 0);
        }
    }

    /* Grid, ticks and their labels. */
    const long nt = lround((hi - lo) / step);
    const double t0 = ceil(lo / step - 1e-9) * step;
    for (long k = 0; k <= nt + 1 && k <= 50; k++) {
        const double t = t0 + (double)k * step;
        if (t > hi + step * 1e-9) break;
        const double ty = YPOS(t);
        nne_svg_line(svg, left, ty, right, ty, "#e0e0e0", 1.0, NULL);
        nne_svg_line(svg, left - 4, ty, left, ty, "#333333", 1.0, NULL);
        snprintf(buf, sizeof buf, "%.*f", dec, fabs(t) < step * 1e-9 ? 0.0 : t);
        nne_svg_text(svg, left - 7, ty + 4, buf, 11.0, "end", 0);
    }
    if (c->y_label) nne_svg_text(svg, x + 14, top + ph / 2, c->y_label, 12.0, "middle", -90);

    /* Bars, markers, labels. */
    const double slot = pw / (double)c->n, bw = slot * 0.7;
    const double base = YPOS(lo <= 0 && hi >= 0 ? 0.0 : lo);
    const double fs = slot < 14 ? 8.0 : slot < 20 ? 9.0 : 10.0;
    for (int32_t i = 0; i < c->n; i++) {
        const double cx = left + slot * ((double)i + 0.5);
        const char *label = c->labels[i] ? c->labels[i] : "";
        const double v = c->values[i];
        if (isfinite(v)) {
            const double vy = YPOS(v);
            snprintf(buf, sizeof buf, "%s: %.*f", label, dec + 2, v);
            nne_svg_rect(svg, cx - bw / 2, fmin(vy, base), bw, fabs(base - vy),
                         c->bar_fill ? c->bar_fill : "#4c72b0", "bar", buf);
        } else {
            nne_svg_text(svg, cx, base - 3, "n/a", fs, "middle", 0);
        }
        if (c->markers && isfinite(c->markers[i])) {
            snprintf(buf, sizeof buf, "%s: %.*f", label, dec + 2, c->markers[i]);
            nne_svg_circle(svg, cx, YPOS(c->markers[i]), fmin(4.0, slot * 0.25),
                           c->marker_fill ? c->marker_fill : "#dd8452", "marker", buf);
        }
        nne_svg_text(svg, cx + 3, bottom + 10, label, fs, "end", -45);
    }
    if (isfinite(c->reference) && c->reference >= lo && c->reference <= hi) {
        const double ry = YPOS(c->reference);
        nne_svg_line(svg, left, ry, right, ry, "#c44e52", 1.5, "6 4");
        if (c->reference_label)
            nne_svg_text(svg, right - 2, ry - 4, c->reference_label, 11.0, "end", 0);
    }
    /* Axes last, over the bars. */
    nne_svg_line(svg, left, top, left, bottom, "#333333", 1.0, NULL);
    nne_svg_line(svg, left, bottom, right, bottom, "#333333", 1.0, NULL);
    nne_svg_group_end(svg);
#undef YPOS
    return svg->err;
}

/* ---- Line chart ----------------------------------------------------------------------- */

/* Automatic axis range: nice ticks around [vmin, vmax]. */
static void auto_range(double vmin, double vmax, double *lo, double *hi, double *step) {
    if (!(vmax > vmin)) {
        const double d = fabs(vmax) > 0 ? fabs(vmax) * 0.1 : 1.0;
        vmin -= d;
        vmax += d;
    }
    *step = nice_step((vmax - vmin) / 5.0);
    *lo = floor(vmin / *step) * *step;
    *hi = ceil(vmax / *step) * *step;
    if (!(*hi > *lo)) *hi = *lo + *step;
}

/* An axis range: explicit (lo < hi, finite) or, when lo == hi, automatic from the data's
 * [vmin, vmax] (which must then be finite). */
static nne_status resolve_range(const char *axis, double lo, double hi, double vmin, double vmax,
                                double *out_lo, double *out_hi, double *step) {
    if (lo == hi) {
        if (!isfinite(vmin))
            return nne_error(NNE_ERR_INVALID_ARG, "svg: line chart has no finite point");
        auto_range(vmin, vmax, out_lo, out_hi, step);
        return NNE_OK;
    }
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
        return nne_error(NNE_ERR_INVALID_ARG, "svg: bad %s range %g..%g", axis, lo, hi);
    *out_lo = lo;
    *out_hi = hi;
    *step = nice_step((hi - lo) / 6.0);
    return NNE_OK;
}

/* Liang-Barsky: clip the segment (x0,y0)-(x1,y1) to [xl,xr] x [yl,yh]; false if outside. */
static bool clip_segment(double *x0, double *y0, double *x1, double *y1, double xl, double xr,
                         double yl, double yh) {
    const double dx = *x1 - *x0, dy = *y1 - *y0;
    const double p[4] = {-dx, dx, -dy, dy}, q[4] = {*x0 - xl, xr - *x0, *y0 - yl, yh - *y0};
    double t0 = 0, t1 = 1;
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return false;
        } else {
            const double t = q[i] / p[i];
            if (p[i] < 0) {
                if (t > t1) return false;
                if (t > t0) t0 = t;
            } else {
                if (t < t0) return false;
                if (t < t1) t1 = t;
            }
        }
    }
    const double ax = *x0, ay = *y0;
    *x0 = ax + t0 * dx;
    *y0 = ay + t0 * dy;
    *x1 = ax + t1 * dx;
    *y1 = ay + t1 * dy;
    return true;
}

static void axis_ticks(nne_svg *svg, bool vertical, double lo, double hi, double step, int dec,
                       double left, double right, double top, double bottom) {
    char buf[64];
    const double t0 = ceil(lo / step - 1e-9) * step;
    for (long k = 0; k <= 50; k++) {
        const double t = t0 + (double)k * step;
        if (t > hi + step * 1e-9) break;
        snprintf(buf, sizeof buf, "%.*f", dec, fabs(t) < step * 1e-9 ? 0.0 : t);
        if (vertical) {
            const double ty = bottom - (t - lo) / (hi - lo) * (bottom - top);
            nne_svg_line(svg, left, ty, right, ty, "#e8e8e8", 1.0, NULL);
            nne_svg_line(svg, left - 4, ty, left, ty, "#333333", 1.0, NULL);
            nne_svg_text(svg, left - 7, ty + 4, buf, 11.0, "end", 0);
        } else {
            const double tx = left + (t - lo) / (hi - lo) * (right - left);
            nne_svg_line(svg, tx, top, tx, bottom, "#e8e8e8", 1.0, NULL);
            nne_svg_line(svg, tx, bottom, tx, bottom + 4, "#333333", 1.0, NULL);
            nne_svg_text(svg, tx, bottom + 16, buf, 11.0, "middle", 0);
        }
    }
}

nne_status nne_svg_line_chart(nne_svg *svg, const nne_line_chart *c, double x, double y, double w,
                              double h) {
    if (!svg || !c || c->n_series < 1 || !c->series)
        return nne_error(NNE_ERR_INVALID_ARG, "svg: line chart needs at least one series");
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int32_t s = 0; s < c->n_series; s++) {
        const nne_line_series *ls = &c->series[s];
        if (ls->n < 0 || (ls->n > 0 && (!ls->x || !ls->y)))
            return nne_error(NNE_ERR_INVALID_ARG, "svg: line series %d has no points array",
                             (int)s);
        for (int32_t i = 0; i < ls->n; i++)
            if (isfinite(ls->x[i]) && isfinite(ls->y[i])) {
                xmin = fmin(xmin, ls->x[i]);
                xmax = fmax(xmax, ls->x[i]);
                ymin = fmin(ymin, ls->y[i]);
                ymax = fmax(ymax, ls->y[i]);
            }
    }
    double xlo, xhi, xstep, ylo, yhi, ystep;
    nne_status st = resolve_range("x", c->x_min, c->x_max, xmin, xmax, &xlo, &xhi, &xstep);
    if (!st) st = resolve_range("y", c->y_min, c->y_max, ymin, ymax, &ylo, &yhi, &ystep);
    if (st) return st;
    const int xdec = c->x_decimals < 0 ? 0 : c->x_decimals > 6 ? 6 : c->x_decimals;
    const int ydec = c->y_decimals < 0 ? 0 : c->y_decimals > 6 ? 6 : c->y_decimals;

    const double top = y + (c->title ? 30.0 : 10.0), left = x + 64.0, right = x + w - 16.0,
                 bottom = y + h - 46.0;
    if (!(right > left + 10) || !(bottom > top + 10))
        return nne_error(NNE_ERR_INVALID_ARG, "svg: line chart area %gx%g is too small", w, h);
#define PX(v) (left + ((v) - xlo) / (xhi - xlo) * (right - left))
#define PY(v) (bottom - ((v) - ylo) / (yhi - ylo) * (bottom - top))
    char buf[512];
    nne_svg_group_begin(svg, NULL, "line-chart");
    if (c->title) nne_svg_text(svg, x + w / 2, y + 20.0, c->title, 15.0, "middle", 0);
    axis_ticks(svg, true, ylo, yhi, ystep, ydec, left, right, top, bottom);
    axis_ticks(svg, false, xlo, xhi, xstep, xdec, left, right, top, bottom);
    if (c->y_label) nne_svg_text(svg, x + 16, (top + bottom) / 2, c->y_label, 12.0, "middle", -90);
    if (c->x_label) nne_svg_text(svg, (left + right) / 2, bottom + 36, c->x_label, 12.0, "middle", 0);

    for (int32_t s = 0; s < c->n_series; s++) {
        const nne_line_series *ls = &c->series[s];
        const char *stroke = ls->stroke ? ls->stroke : "#4c72b0";
        nne_svg_group_begin(svg, NULL, "series");
        for (int32_t i = 0; i + 1 < ls->n; i++) {
            double x0 = ls->x[i], y0 = ls->y[i], x1 = ls->x[i + 1], y1 = ls->y[i + 1];
            if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1)) continue;
            if (!clip_segment(&x0, &y0, &x1, &y1, xlo, xhi, ylo, yhi)) continue;
            nne_svg_line(svg, PX(x0), PY(y0), PX(x1), PY(y1), stroke, 1.8, ls->dash);
        }
        for (int32_t i = 0; ls->points && i < ls->n; i++) {
            const double px = ls->x[i], py = ls->y[i];
            if (!isfinite(px) || !isfinite(py) || px < xlo || px > xhi || py < ylo || py > yhi)
                continue;
            snprintf(buf, sizeof buf, "%s: %.4f, %.4f", ls->label ? ls->label : "", px, py);
            nne_svg_circle(svg, PX(px), PY(py), 2.8, stroke, "point", buf);
        }
        nne_svg_group_end(svg);
    }

    /* Legend, lower right (RD curves rise to the upper right, leaving that corner free). */
    int32_t n_leg = 0;
    size_t longest = 0;
    for (int32_t s = 0; s < c->n_series; s++)
        if (c->series[s].label) {
            n_leg++;
            const size_t l = strlen(c->series[s].label);
            if (l > longest) longest = l;
        }
    if (n_leg > 0) {
        const double lw = 40.0 + 6.2 * (double)longest, lh = 8.0 + 16.0 * (double)n_leg;
        double lx = right - lw - 8, ly = bottom - lh - 8;
        nne_svg_rect(svg, lx, ly, lw, lh, "#ffffff", "legend", NULL);
        for (int32_t s = 0, k = 0; s < c->n_series; s++) {
            const nne_line_series *ls = &c->series[s];
            if (!ls->label) continue;
            const double ey = ly + 12.0 + 16.0 * (double)k++;
            const char *stroke = ls->stroke ? ls->stroke : "#4c72b0";
            nne_svg_line(svg, lx + 6, ey, lx + 30, ey, stroke, 1.8, ls->dash);
            if (ls->points) nne_svg_circle(svg, lx + 18, ey, 2.8, stroke, NULL, NULL);
            nne_svg_text(svg, lx + 36, ey + 4, ls->label, 11.0, "start", 0);
        }
    }
    nne_svg_line(svg, left, top, left, bottom, "#333333", 1.0, NULL);
    nne_svg_line(svg, left, bottom, right, bottom, "#333333", 1.0, NULL);
    nne_svg_group_end(svg);
#undef PX
#undef PY
    return svg->err;
}
