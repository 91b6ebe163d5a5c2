/* The SVG writer and bar chart (svg.h): well-formed output, escaping, one bar per value,
 * deterministic bytes, argument errors. */
#include <math.h>
#include <string.h>

#include "nnedge/svg.h"
#include "testutil.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static void test_document(void) {
    nne_svg *s;
    CHECK_OK(nne_svg_begin(200, 100, &s));
    if (!s) return;
    nne_svg_group_begin(s, "g1", "c<1>");
    nne_svg_rect(s, 1, 2, 3, 4, "#123456", "box", "a \"quoted\" & <tagged> 'title'");
    nne_svg_line(s, 0, 0, 10, NAN, "black", 1, "4 2");
    nne_svg_circle(s, 5, 5, 2, NULL, NULL, NULL);
    nne_svg_text(s, 10, 20, "x < y & z > w", 12, "middle", -45);
    nne_svg_group_end(s);
    char *out;
    size_t n;
    CHECK_OK(nne_svg_finish(s, &out, &n));
    if (!out) return;
    CHECK(strncmp(out, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
    CHECK(ends_with(out, n, "</svg>\n"));
    CHECK(strlen(out) == n);
    CHECK(strstr(out, "x &lt; y &amp; z &gt; w") != NULL);
    CHECK(strstr(out, "a &quot;quoted&quot; &amp; &lt;tagged&gt; &#39;title&#39;") != NULL);
    CHECK(strstr(out, "class=\"c&lt;1&gt;\"") != NULL);
    CHECK(strstr(out, "nan") == NULL && strstr(out, "NaN") == NULL); /* NaN coordinates -> 0 */
    CHECK(strstr(out, "rotate(-45.00 10.00 20.00)") != NULL);
    CHECK(count(out, "<g") == count(out, "</g>"));
    nne_free(out);

    /* Errors: bad size, groups left open or closed twice. */
    CHECK_STATUS(nne_svg_begin(0, 10, &s), NNE_ERR_INVALID_ARG);
    CHECK_OK(nne_svg_begin(10, 10, &s));
    nne_svg_group_begin(s, NULL, NULL);
    CHECK_STATUS(nne_svg_finish(s, &out, &n), NNE_ERR_INVALID_ARG);
    CHECK(out == NULL);
    CHECK_OK(nne_svg_begin(10, 10, &s));
    nne_svg_group_end(s);
    CHECK_STATUS(nne_svg_finish(s, &out, &n), NNE_ERR_INVALID_ARG);
    nne_svg_free(NULL);
}

static char *chart(const nne_bar_chart *c, size_t *n, nne_status *st) {
    nne_svg *s;
    *st = nne_svg_begin(600, 300, &s);
    if (*st) return NULL;
    *st = nne_svg_bar_chart(s, c, 0, 0, 600, 300);
    char *out = NULL;
    nne_status fs = nne_svg_finish(s, &out, n);
    if (!*st) *st = fs;
    return out;
}

static void test_bar_chart(void) {
    const char *labels[5] = {"kodim01", "kodim02", "a&b", "kodim04", "kodim05"};
    double v[5] = {29.5, 31.25, 33.0, 30.0, 27.75};
    double mk[5] = {35, 36, 37, NAN, 34};
    nne_bar_chart c = {0};
    c.title = "(a) PSNR values";
    c.y_label = "PSNR (dB)";
    c.n = 5;
    c.labels = labels;
    c.values = v;
    c.bar_label = "cae-seed";
    c.markers = mk;
    c.marker_label = "JPEG q90";
    c.reference = 30.3;
    c.reference_label = "mean 30.30 dB";
    size_t n;
    nne_status st;
    char *out = chart(&c, &n, &st);
    CHECK_OK(st);
    if (!out) return;
    CHECK(count(out, "class=\"bar\"") == 5);
    CHECK(count(out, "class=\"marker\"") == 4);
    CHECK(strstr(out, "a&amp;b") != NULL);
    CHECK(strstr(out, "mean 30.30 dB") != NULL);
    CHECK(strstr(out, ">40<") != NULL && strstr(out, ">0<") != NULL); /* ticks 0..40 */
    CHECK(strstr(out, "kodim02: 31.25") != NULL);                     /* tooltip */
    /* Deterministic. */
    size_t n2;
    char *out2 = chart(&c, &n2, &st);
    CHECK(out2 && n2 == n && memcmp(out, out2, n) == 0);
    nne_free(out2);
    nne_free(out);

    /* Zoomed axis for values close together; a NaN value draws no bar. */
    double ms[5] = {0.981, 0.975, NAN, 0.990, 0.969};
    c.values = ms;
    c.markers = NULL;
    c.zoom = true;
    c.decimals = 2;
    c.reference = NAN;
    out = chart(&c, &n, &st);
    CHECK_OK(st);
    if (out) {
        CHECK(count(out, "class=\"bar\"") == 4);
        CHECK(strstr(out, "n/a") != NULL);
        CHECK(strstr(out, ">0.00<") == NULL); /* the axis does not start at 0 */
        CHECK(strstr(out, ">1.00<") != NULL || strstr(out, ">0.99<") != NULL);
    }
    nne_free(out);

    /* All values equal, one category. */
    double one = 5;
    c.n = 1;
    c.values = &one;
    c.zoom = false;
    out = chart(&c, &n, &st);
    CHECK_OK(st);
    if (out) CHECK(count(out, "class=\"bar\"") == 1);
    nne_free(out);

    /* Errors. */
    double nan5[5] = {NAN, NAN, NAN, NAN, NAN};
    c.n = 5;
    c.values = nan5;
    out = chart(&c, &n, &st);
    CHECK(st == NNE_ERR_INVALID_ARG);
    nne_free(out);
    c.values = v;
    c.y_min = 10;
    c.y_max = 5;
    out = chart(&c, &n, &st);
    CHECK(st == NNE_ERR_INVALID_ARG);
    nne_free(out);
    c.y_min = c.y_max = 0;
    c.n = 0;
    out = chart(&c, &n, &st);
    CHECK(st == NNE_ERR_INVALID_ARG);
    nne_free(out);
}

static char *line_chart(const nne_line_chart *c, nne_status *st) {
    nne_svg *svg = NULL;
    char *out = NULL;
    size_t n = 0;
    *st = nne_svg_begin(600, 400, &svg);
    if (*st) return NULL;
    *st = nne_svg_line_chart(svg, c, 0, 0, 600, 400);
    if (*st) {
        nne_svg_free(svg);
        return NULL;
    }
    *st = nne_svg_finish(svg, &out, &n);
    return out;
}

static void test_line_chart(void) {
    const double x1[4] = {0.2, 0.5, 1.0, 1.4}, y1[4] = {28, 31, 34, 36};
    /* A reference curve reaching beyond the range (x to 3) and a NaN point breaking it. */
    const double x2[5] = {0.1, 0.6, NAN, 2.0, 3.0}, y2[5] = {26, 30, 33, 38, 40};
    nne_line_series s[2] = {{"live & co", x1, y1, 4, "#1f77b4", NULL, true},
                            {"anchor", x2, y2, 5, "#ff7f0e", "6 4", false}};
    nne_line_chart c = {"RD", "bpp", "PSNR (dB)", 2, s, 1, 0, 0, 1.5, 25, 37};
    nne_status st;
    char *out = line_chart(&c, &st);
    CHECK_OK(st);
    if (!out) return;
    CHECK(count(out, "class=\"point\"") == 4);         /* dots of the first series only */
    CHECK(strstr(out, "live &amp; co: 0.5000, 31.0000") != NULL); /* tooltip */
    CHECK(count(out, "stroke-dasharray=\"6 4\"") == 2); /* 1 segment kept after clipping + legend */
    CHECK(strstr(out, ">1.5<") != NULL && strstr(out, ">37<") == NULL); /* ticks by 0.5 / 2 */
    CHECK(strstr(out, "nan") == NULL);
    nne_free(out);
    /* Automatic range covers every finite point. */
    c.x_min = c.x_max = c.y_min = c.y_max = 0;
    out = line_chart(&c, &st);
    CHECK_OK(st);
    CHECK(out && strstr(out, ">3.0<") != NULL && strstr(out, ">40<") != NULL);
    nne_free(out);
    /* Errors. */
    c.n_series = 0;
    CHECK(line_chart(&c, &st) == NULL && st == NNE_ERR_INVALID_ARG);
    c.n_series = 2;
    c.x_min = 2;
    c.x_max = 1;
    CHECK(line_chart(&c, &st) == NULL && st == NNE_ERR_INVALID_ARG);
    const double nx[1] = {NAN};
    nne_line_series e = {"e", nx, nx, 1, NULL, NULL, false};
    nne_line_chart ce = {NULL, NULL, NULL, 1, &e, 0, 0, 0, 0, 0, 0};
    CHECK(line_chart(&ce, &st) == NULL && st == NNE_ERR_INVALID_ARG);
}

int main(void) {
    NNE_RUN(test_document);
    NNE_RUN(test_bar_chart);
    NNE_RUN(test_line_chart);
    return nne_test_summary();
}
