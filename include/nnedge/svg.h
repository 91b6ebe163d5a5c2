/* nnedge report: a small dependency-free SVG writer and a bar chart on top of it.
 *
 * The writer appends to a growing memory buffer; the caller saves the finished document
 * (e.g. with nne_file_write_atomic). Errors are sticky, as with a FILE: drawing calls return
 * nothing, and nne_svg_finish reports the first failure. Text is XML-escaped; numbers are
 * written with at most 2 decimals in the C locale ("%.2f"), so documents are byte-identical
 * across runs. Coordinates are SVG user units (pixels), y growing downwards.
 */
#ifndef NNEDGE_SVG_H
#define NNEDGE_SVG_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nne_svg nne_svg;

/* Start a document of width x height (> 0) with a white background. */
nne_status nne_svg_begin(double width, double height, nne_svg **out);
/* Close the document (</svg> and a newline) and hand its bytes to the caller: *out (NUL
 * terminated, free with nne_free) and *size (without the NUL). The writer is freed in every
 * case. Returns the first error any drawing call hit. */
nne_status nne_svg_finish(nne_svg *svg, char **out, size_t *size);
/* Discard an unfinished document. Accepts NULL. */
void nne_svg_free(nne_svg *svg);

/* Shapes. Colours are SVG colour strings ("#1f77b4", "none"); a NULL class omits the class
 * attribute; a non-NULL title becomes a <title> child (a tooltip in browsers). */
void nne_svg_rect(nne_svg *svg, double x, double y, double w, double h, const char *fill,
                  const char *cls, const char *title);
/* dash: NULL for a solid line, else an SVG stroke-dasharray such as "4 3". */
void nne_svg_line(nne_svg *svg, double x1, double y1, double x2, double y2, const char *stroke,
                  double width, const char *dash);
void nne_svg_circle(nne_svg *svg, double cx, double cy, double r, const char *fill, const char *cls,
                    const char *title);
/* anchor: "start", "middle" or "end"; rotate: degrees about (x, y), 0 for none. */
void nne_svg_text(nne_svg *svg, double x, double y, const char *text, double size,
                  const char *anchor, double rotate);
/* Group with an optional id and class (NULL to omit); groups nest up to 16 deep. */
void nne_svg_group_begin(nne_svg *svg, const char *id, const char *cls);
void nne_svg_group_end(nne_svg *svg);

/* A vertical bar chart: one bar per category, an optional marker series drawn as dots over
 * the bars (e.g. a reference codec), an optional horizontal reference line (e.g. the mean),
 * a y axis with "nice" ticks (steps of 1, 2 or 5 x 10^k) and rotated category labels. Bars
 * carry class="bar", markers class="marker"; a NaN value draws no bar (the label says n/a). */
typedef struct nne_bar_chart {
    const char *title;           /* drawn above the plot; may be NULL */
    const char *y_label;         /* rotated, left of the axis; may be NULL */
    int32_t n;                   /* categories, >= 1 */
    const char *const *labels;   /* n category labels */
    const double *values;        /* n bar heights */
    const char *bar_label;       /* legend entry for the bars; may be NULL */
    const char *bar_fill;        /* NULL: "#4c72b0" */
    const double *markers;       /* n values or NULL */
    const char *marker_label;    /* legend entry for the markers; may be NULL */
    const char *marker_fill;     /* NULL: "#dd8452" */
    double reference;            /* NaN: no reference line */
    const char *reference_label; /* text at the line's right end; may be NULL */
    int decimals;                /* tick and tooltip decimals, 0..6 */
    /* Axis range. y_min == y_max (e.g. both 0): automatic: from 0 when `zoom` is false, else
     * from a tick below the smallest value (for values close together, such as MS-SSIM
     * 0.95..0.99); up to a tick above the largest value. */
    double y_min, y_max;
    bool zoom;
} nne_bar_chart;

/* Draw `c` into the rectangle (x, y, w, h) of the document. NNE_ERR_INVALID_ARG for n < 1,
 * missing arrays, a non-finite explicit range or y_max < y_min, or when no value is finite
 * and the range is automatic. */
nne_status nne_svg_bar_chart(nne_svg *svg, const nne_bar_chart *c, double x, double y, double w,
                             double h);

/* An x-y line chart (e.g. rate-distortion curves): each series is a polyline through its
 * points in the given order, optionally dashed and with dots at the points (class="point",
 * tooltip "label: x, y"); a NaN coordinate breaks the line. Axes with nice ticks, a grid and
 * a legend box in the lower right corner. Everything is clipped to the axis range, so a
 * series that runs beyond it (a reference curve over a wider range) is cut at the frame. */
typedef struct nne_line_series {
    const char *label;  /* legend entry; may be NULL (not listed) */
    const double *x, *y; /* n points */
    int32_t n;
    const char *stroke; /* NULL: "#4c72b0" */
    const char *dash;   /* NULL: solid; else an SVG dasharray such as "6 4" */
    bool points;        /* dots at the points */
} nne_line_series;

typedef struct nne_line_chart {
    const char *title;            /* may be NULL */
    const char *x_label, *y_label; /* may be NULL */
    int32_t n_series;              /* >= 1 */
    const nne_line_series *series;
    int x_decimals, y_decimals; /* tick decimals, 0..6 */
    /* Axis ranges. x_min == x_max: automatic from every finite point (from a tick at or
     * below the smallest to one at or above the largest); likewise for y. */
    double x_min, x_max, y_min, y_max;
} nne_line_chart;

/* Draw `c` into the rectangle (x, y, w, h). NNE_ERR_INVALID_ARG for no series, a series
 * with n > 0 and missing arrays, a non-finite or empty explicit range, or no finite point
 * with an automatic range. */
nne_status nne_svg_line_chart(nne_svg *svg, const nne_line_chart *c, double x, double y, double w,
                              double h);

#ifdef __cplusplus
}
#endif
#endif
