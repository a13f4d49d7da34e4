/*
 * Compiled kernels of topo's NNSTD (topo.assignment): the Jaccard cost of one layer and an
 * exact assignment solver that returns an optimal dual with its matching.
 *
 * Optional: topo.assignment uses these when the module was built (`pip install` with a C
 * compiler), and its NumPy/SciPy/lapx path otherwise. Every dual returned here is checked
 * by the caller (dual feasibility over every pair, complementary slackness on the matching)
 * before it is used; a failed check falls back to the other path.
 *
 * Only the CPython buffer protocol is used (no NumPy headers): the caller passes contiguous
 * int64 / float64 arrays and receives bytearrays for outputs of unknown length.
 *
 * jaccard(a_indptr, a_indices, b_indptr, b_indices, col_map, n_cols, dense_out)
 *     Intersection counts |N_A(i) ∩ N_B(j)| of every pair of units that share an input, by
 *     the sparse product of A's structure with B's transposed structure (for each input of
 *     A's unit i, the B units reading it), and the Jaccard distance (U - I) / U with
 *     U = deg_a(i) + deg_b(j) - I as the correctly rounded quotient of two integers (the
 *     same double as NumPy's division of the same integers). With dense_out (a writable
 *     float64 buffer of n_a * n_b) the full matrix is written (0 for two units without
 *     inputs, 1 for pairs sharing none) and None is returned; otherwise the similarity
 *     graph in row-major order: (rows, cols, values) as bytearrays of int64, int64 and
 *     float64, pairs sharing an input plus the pairs of two units without inputs (cost 0).
 *     Returns False (nothing written) when col_map maps two inputs of B to one column.
 *
 * solve(n_a, n_b, indptr, indices, values, col_of, u, v[, warm])
 *     Minimum-cost perfect matching of the square problem of size n = max(n_a, n_b) whose
 *     pairs (i, indices[t]) for t in indptr[i]..indptr[i+1] (i < n_a, columns < n_b) cost
 *     values[t] in [0, 1] and every other pair (the dummy rows and columns included) costs
 *     1. Writes the column of every row into col_of (int64, length n) and an optimal dual
 *     u (rows), v (columns) with u_i + v_j <= c_ij for every pair and equality on the
 *     matching (up to rounding; the caller checks both within its tolerance).
 *
 *     Method: shortest augmenting paths with dual updates (R. Jonker and A. Volgenant,
 *     "A shortest augmenting path algorithm for dense and sparse linear assignment
 *     problems", Computing 38, 1987; the shortest path form of the Hungarian method in
 *     R. Burkard, M. Dell'Amico and S. Martello, "Assignment Problems", SIAM 2009,
 *     Chapter 4). Initialisation as Jonker and Volgenant's: column reduction
 *     v_j = min_i c_ij with u = 0, each column given to the row of its minimum when that
 *     row is free, then two passes of augmenting row reduction (a free row takes its
 *     column of least reduced cost, whose v drops by the gap to the row's second least,
 *     freeing that column's former row). Then one Dijkstra search per free row. The
 *     implicit cost-1 pairs are never listed: from a scanned row i at path length b_i
 *     every column is reachable at b_i + 1 - u_i - v_j, so the best of these over the
 *     scanned rows is H - v_j with H = min_i (b_i + 1 - u_i) (a "hub"), and the next
 *     column of the shortest path tree is the smaller of the least tentative length among
 *     the columns reached through listed pairs (a binary heap; among equal lengths a free
 *     column first) and H - max v_j over the columns not yet scanned (an indexed max-heap
 *     on v). A listed pair costs at most 1, so when the hub is strictly shorter its pair is
 *     an implicit one. Columns farther than an augmenting path already found are not
 *     queued. After each search the duals change by the standard update
 *     (u_i += delta - b_i on the scanned rows, v_j -= delta - d_j on the scanned columns),
 *     which keeps every reduced cost non-negative and the new path's pairs at zero.
 *     With warm, col_of, u and v hold an optimal solution of the same problem with fewer
 *     pairs listed: each row's u drops to its least reduced cost where a new pair undercuts
 *     it, rows whose pair is then no longer tight are freed, and only they are searched.
 *     Returns None; raises ValueError on out-of-range input.
 *
 * reduced(dense, n_b, rows, u, v, below[, mask])
 *     The entries of a dense cost (or of its reduced costs c - u - v) at most `below` (or
 *     set in mask), row by row: the core of a dense layer and the check of the pairs left
 *     out of it.
 *
 * graph_check(rows, cols, values, u, v, tol, margin, keep)
 *     The reduced costs of a similarity graph's pairs against a core's dual: the pairs
 *     that must join the core (any below -tol), or else the tight ones.
 *
 * potentials(k, head, w, hub_w, p, step)
 *     The largest potentials under the exchange constraints of topo.assignment's
 *     Bellman-Ford (a label-correcting search, first in first out), in place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t i64;

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t itemsize,
                      char kind, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    char last = f[strlen(f) - 1];
    int ok = view->itemsize == itemsize;
    if (kind == 'i')
        ok = ok && (last == 'l' || last == 'q');
    else if (kind == 'b')
        ok = ok && (last == 'B' || last == '?' || last == 'b');
    else
        ok = ok && last == 'd';
    if (!ok) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s: expected a contiguous %s array", name,
                     kind == 'i' ? "int64" : kind == 'b' ? "bool or uint8" : "float64");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ growable output */
typedef struct {
    char *data;
    Py_ssize_t size, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t more)
{
    if (b->size + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->size + more)
        cap *= 2;
    char *p = realloc(b->data, (size_t)cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static PyObject *pack_pairs(Buf *rows, Buf *cols, Buf *vals);

/* ------------------------------------------------------------------ Jaccard cost */
static PyObject *jaccard(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *oap, *oai, *obp, *obi, *omap, *odense;
    Py_ssize_t n_cols;
    if (!PyArg_ParseTuple(args, "OOOOOnO", &oap, &oai, &obp, &obi, &omap, &n_cols, &odense))
        return NULL;
    Py_buffer ap, ai, bp, bi, mp, dv;
    int have_dense = odense != Py_None, got = 0;
    PyObject *result = NULL;
    i64 *bt_ptr = NULL, *bt_idx = NULL, *deg_b = NULL;
    int32_t *count = NULL, *deg_b32 = NULL;
    i64 *touched = NULL, *empty_b = NULL;
    uint64_t *bits = NULL;
    Buf rows = {0}, cols = {0}, vals = {0};

    if (get_buffer(oap, &ap, 0, 8, 'i', "a_indptr") < 0) return NULL;
    got = 1;
    if (get_buffer(oai, &ai, 0, 8, 'i', "a_indices") < 0) goto done;
    got = 2;
    if (get_buffer(obp, &bp, 0, 8, 'i', "b_indptr") < 0) goto done;
    got = 3;
    if (get_buffer(obi, &bi, 0, 8, 'i', "b_indices") < 0) goto done;
    got = 4;
    if (get_buffer(omap, &mp, 0, 8, 'i', "col_map") < 0) goto done;
    got = 5;
    if (have_dense) {
        if (get_buffer(odense, &dv, 1, 8, 'd', "dense_out") < 0) goto done;
        got = 6;
    }
    {
        const i64 *a_ptr = ap.buf, *a_idx = ai.buf, *b_ptr = bp.buf, *b_idx = bi.buf,
                  *col_map = mp.buf;
        Py_ssize_t n_a = ap.len / 8 - 1, n_b = bp.len / 8 - 1, m_b = mp.len / 8;
        if (n_a < 0 || n_b < 0 || n_cols < 0) {
            PyErr_SetString(PyExc_ValueError, "empty indptr");
            goto done;
        }
        if (have_dense && dv.len / 8 != (Py_ssize_t)n_a * n_b) {
            PyErr_SetString(PyExc_ValueError, "dense_out has the wrong size");
            goto done;
        }
        if (a_ptr[0] != 0 || b_ptr[0] != 0 || a_ptr[n_a] != ai.len / 8 ||
            b_ptr[n_b] != bi.len / 8) {
            PyErr_SetString(PyExc_ValueError, "indptr does not match indices");
            goto done;
        }
        for (Py_ssize_t i = 0; i < n_a; i++)
            if (a_ptr[i + 1] < a_ptr[i]) {
                PyErr_SetString(PyExc_ValueError, "a_indptr decreases");
                goto done;
            }
        for (Py_ssize_t j = 0; j < n_b; j++)
            if (b_ptr[j + 1] < b_ptr[j]) {
                PyErr_SetString(PyExc_ValueError, "b_indptr decreases");
                goto done;
            }
        bt_ptr = calloc((size_t)n_cols + 1, sizeof(i64));
        deg_b = malloc(((size_t)n_b + 1) * sizeof(i64));
        count = calloc((size_t)n_b + 1, sizeof(int32_t));
        deg_b32 = malloc(((size_t)n_b + 1) * sizeof(int32_t));
        touched = malloc(((size_t)n_b + 1) * sizeof(i64));
        empty_b = malloc(((size_t)n_b + 1) * sizeof(i64));
        bits = calloc(((size_t)n_b + 63) / 64 + 1, sizeof(uint64_t));
        if (!bt_ptr || !deg_b || !count || !deg_b32 || !touched || !empty_b || !bits) {
            PyErr_NoMemory();
            goto done;
        }
        if (n_cols >= ((Py_ssize_t)1 << 30)) { /* counts are int32 below */
            result = Py_False;
            Py_INCREF(result);
            goto done;
        }
        /* col_map must send B's inputs to distinct columns of the frame */
        for (Py_ssize_t t = 0; t < m_b; t++) {
            i64 c = col_map[t];
            if (c < 0 || c >= n_cols) {
                PyErr_SetString(PyExc_ValueError, "col_map out of range");
                goto done;
            }
            if (bt_ptr[c + 1]) {
                result = Py_False;
                Py_INCREF(result);
                goto done;
            }
            bt_ptr[c + 1] = 1;
        }
        memset(bt_ptr, 0, ((size_t)n_cols + 1) * sizeof(i64));
        Py_ssize_t nnz_b = bi.len / 8, n_empty_b = 0;
        for (Py_ssize_t t = 0; t < nnz_b; t++) {
            i64 x = b_idx[t];
            if (x < 0 || x >= m_b) {
                PyErr_SetString(PyExc_ValueError, "b_indices out of range");
                goto done;
            }
            bt_ptr[col_map[x] + 1]++;
        }
        for (Py_ssize_t c = 0; c < n_cols; c++)
            bt_ptr[c + 1] += bt_ptr[c];
        bt_idx = malloc(((size_t)nnz_b + 1) * sizeof(i64));
        if (!bt_idx) {
            PyErr_NoMemory();
            goto done;
        }
        /* B's units per input, in increasing order (fill by j ascending) */
        for (Py_ssize_t j = 0; j < n_b; j++) {
            deg_b[j] = b_ptr[j + 1] - b_ptr[j];
            if (deg_b[j] == 0)
                empty_b[n_empty_b++] = j;
            for (i64 t = b_ptr[j]; t < b_ptr[j + 1]; t++)
                bt_idx[bt_ptr[col_map[b_idx[t]]]++] = j;
        }
        for (Py_ssize_t c = n_cols; c > 0; c--)
            bt_ptr[c] = bt_ptr[c - 1];
        bt_ptr[0] = 0;
        Py_ssize_t nnz_a = ai.len / 8;
        for (Py_ssize_t t = 0; t < nnz_a; t++)
            if (a_idx[t] < 0 || a_idx[t] >= n_cols) {
                PyErr_SetString(PyExc_ValueError, "a_indices out of range");
                goto done;
            }
        double *dense = have_dense ? dv.buf : NULL;
        if (dense) {
            /* every pair is written: plain counts (int32: the divisions vectorise), then
               (U - I) / max(U, 1), which is 0 / 1 = 0 for two units without inputs */
            for (Py_ssize_t j = 0; j < n_b; j++)
                deg_b32[j] = (int32_t)deg_b[j];
            for (Py_ssize_t i = 0; i < n_a; i++) {
                int32_t deg_a = (int32_t)(a_ptr[i + 1] - a_ptr[i]);
                for (i64 t = a_ptr[i]; t < a_ptr[i + 1]; t++) {
                    i64 c = a_idx[t];
                    for (i64 s = bt_ptr[c]; s < bt_ptr[c + 1]; s++)
                        count[bt_idx[s]]++;
                }
                double *restrict row = dense + (Py_ssize_t)i * n_b;
                const int32_t *restrict shared = count, *restrict deg = deg_b32;
                for (Py_ssize_t j = 0; j < n_b; j++) {
                    int32_t inter = shared[j];
                    int32_t uni = deg_a + deg[j] - inter;
                    row[j] = (double)(uni - inter) / (double)(uni > 1 ? uni : 1);
                }
                memset(count, 0, (size_t)n_b * sizeof(int32_t));
            }
            result = Py_None;
            Py_INCREF(result);
            goto done;
        }
        Py_ssize_t n_words = (n_b + 63) / 64;
        for (Py_ssize_t i = 0; i < n_a; i++) {
            i64 deg_a = a_ptr[i + 1] - a_ptr[i];
            Py_ssize_t nt = 0;
            for (i64 t = a_ptr[i]; t < a_ptr[i + 1]; t++) {
                i64 c = a_idx[t];
                for (i64 s = bt_ptr[c]; s < bt_ptr[c + 1]; s++) {
                    i64 j = bt_idx[s];
                    if (count[j]++ == 0)
                        touched[nt++] = j;
                }
            }
            Py_ssize_t emit = deg_a == 0 ? n_empty_b : nt;
            if (emit == 0)
                continue;
            if (buf_reserve(&rows, emit * 8) < 0 || buf_reserve(&cols, emit * 8) < 0 ||
                buf_reserve(&vals, emit * 8) < 0)
                goto done;
            i64 *r = (i64 *)(rows.data + rows.size), *cc = (i64 *)(cols.data + cols.size);
            double *vv = (double *)(vals.data + vals.size);
            if (deg_a == 0) {
                for (Py_ssize_t s = 0; s < n_empty_b; s++) {
                    r[s] = i;
                    cc[s] = empty_b[s];
                    vv[s] = 0.0;
                }
            } else {
                /* the touched columns in increasing order through a bitmap */
                for (Py_ssize_t s = 0; s < nt; s++)
                    bits[touched[s] >> 6] |= (uint64_t)1 << (touched[s] & 63);
                Py_ssize_t k = 0;
                for (Py_ssize_t w = 0; w < n_words && k < nt; w++) {
                    uint64_t word = bits[w];
                    bits[w] = 0;
                    while (word) {
                        i64 j = (i64)w * 64 + __builtin_ctzll(word);
                        word &= word - 1;
                        i64 inter = count[j];
                        i64 uni = deg_a + deg_b[j] - inter;
                        r[k] = i;
                        cc[k] = j;
                        vv[k] = (double)(uni - inter) / (double)uni;
                        count[j] = 0;
                        k++;
                    }
                }
            }
            rows.size += emit * 8;
            cols.size += emit * 8;
            vals.size += emit * 8;
        }
        {
            /* bytearrays: NumPy wraps them as writable arrays without a copy */
            result = pack_pairs(&rows, &cols, &vals);
        }
    }
done:
    free(bt_ptr);
    free(bt_idx);
    free(deg_b);
    free(count);
    free(deg_b32);
    free(touched);
    free(empty_b);
    free(bits);
    free(rows.data);
    free(cols.data);
    free(vals.data);
    if (got >= 6) PyBuffer_Release(&dv);
    if (got >= 5) PyBuffer_Release(&mp);
    if (got >= 4) PyBuffer_Release(&bi);
    if (got >= 3) PyBuffer_Release(&bp);
    if (got >= 2) PyBuffer_Release(&ai);
    if (got >= 1) PyBuffer_Release(&ap);
    return result;
}

/* ------------------------------------------------------------------ dense selections */
static PyObject *pack_pairs(Buf *rows, Buf *cols, Buf *vals)
{
    PyObject *r = PyByteArray_FromStringAndSize(rows->data ? rows->data : "", rows->size);
    PyObject *c = r ? PyByteArray_FromStringAndSize(cols->data ? cols->data : "", cols->size)
                    : NULL;
    PyObject *x = c ? PyByteArray_FromStringAndSize(vals->data ? vals->data : "", vals->size)
                    : NULL;
    PyObject *result = x ? PyTuple_Pack(3, r, c, x) : NULL;
    Py_XDECREF(r);
    Py_XDECREF(c);
    Py_XDECREF(x);
    return result;
}

static int push_pair(Buf *rows, Buf *cols, Buf *vals, i64 i, i64 j, double x)
{
    if (buf_reserve(rows, 8) < 0 || buf_reserve(cols, 8) < 0 || buf_reserve(vals, 8) < 0)
        return -1;
    memcpy(rows->data + rows->size, &i, 8);
    memcpy(cols->data + cols->size, &j, 8);
    memcpy(vals->data + vals->size, &x, 8);
    rows->size += 8;
    cols->size += 8;
    vals->size += 8;
    return 0;
}

/* reduced(dense, n_b, rows, u, v, below[, mask]): the entries (i, j, c_ij - u_i - v_j) of
   the given rows of a dense (n_a, n_b) cost whose value c_ij - u_i - v_j is at most
   `below`, row by row in the order of `rows`, columns increasing. With u = v = None the
   value is c_ij itself (the pairs of cost at most `below`, rows None: every row), and the
   entries where `mask` (bool, n_a * n_b) is set are included whatever their value. */
static PyObject *reduced(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *odense, *orows, *ou, *ov, *omask = Py_None;
    Py_ssize_t n_b;
    double below;
    if (!PyArg_ParseTuple(args, "OnOOOd|O", &odense, &n_b, &orows, &ou, &ov, &below, &omask))
        return NULL;
    Py_buffer dv, rv = {0}, uv = {0}, vv = {0}, mv = {0};
    int have_rows = orows != Py_None, have_dual = ou != Py_None, have_mask = omask != Py_None;
    int got = 0;
    PyObject *result = NULL;
    Buf rows = {0}, cols = {0}, vals = {0};
    if (get_buffer(odense, &dv, 0, 8, 'd', "dense") < 0)
        return NULL;
    got = 1;
    if (have_rows && get_buffer(orows, &rv, 0, 8, 'i', "rows") < 0)
        goto done;
    got = 2;
    if (have_dual && get_buffer(ou, &uv, 0, 8, 'd', "u") < 0)
        goto done;
    got = 3;
    if (have_dual && get_buffer(ov, &vv, 0, 8, 'd', "v") < 0)
        goto done;
    got = 4;
    if (have_mask && get_buffer(omask, &mv, 0, 1, 'b', "mask") < 0)
        goto done;
    got = 5;
    {
        Py_ssize_t n_a = n_b > 0 ? dv.len / 8 / n_b : 0;
        if (n_b < 0 || (n_b > 0 && dv.len / 8 != n_a * n_b) ||
            (have_dual && (uv.len / 8 < n_a || vv.len / 8 < n_b)) ||
            (have_mask && (have_dual || mv.len != dv.len / 8))) {
            PyErr_SetString(PyExc_ValueError, "reduced: inconsistent sizes");
            goto done;
        }
        const double *c = dv.buf, *u = have_dual ? uv.buf : NULL, *v = have_dual ? vv.buf : NULL;
        const i64 *which = have_rows ? rv.buf : NULL;
        const unsigned char *mask = have_mask ? mv.buf : NULL;
        Py_ssize_t count = have_rows ? rv.len / 8 : n_a;
        for (Py_ssize_t k = 0; k < count; k++) {
            i64 i = which ? which[k] : k;
            if (i < 0 || i >= n_a) {
                PyErr_SetString(PyExc_ValueError, "reduced: row out of range");
                goto done;
            }
            const double *row = c + (Py_ssize_t)i * n_b;
            const unsigned char *mrow = mask ? mask + (Py_ssize_t)i * n_b : NULL;
            double ui = u ? u[i] : 0.0;
            for (Py_ssize_t j = 0; j < n_b; j++) {
                double x = u ? row[j] - ui - v[j] : row[j];
                if ((x <= below || (mrow && mrow[j])) &&
                    push_pair(&rows, &cols, &vals, i, j, x) < 0)
                    goto done;
            }
        }
        result = pack_pairs(&rows, &cols, &vals);
    }
done:
    free(rows.data);
    free(cols.data);
    free(vals.data);
    if (got >= 5 && have_mask) PyBuffer_Release(&mv);
    if (got >= 4 && have_dual) PyBuffer_Release(&vv);
    if (got >= 3 && have_dual) PyBuffer_Release(&uv);
    if (got >= 2 && have_rows) PyBuffer_Release(&rv);
    PyBuffer_Release(&dv);
    return result;
}

/* graph_check(rows, cols, values, u, v, tol, margin, keep) -> (violated, tight)
   The reduced costs values[t] - u[rows[t]] - v[cols[t]] of a similarity graph's pairs (the
   same operations, in the same order, as NumPy's). When one is below -tol: keep[t] is set
   for every pair whose reduced cost is at most margin, and (True, None) is returned;
   otherwise (False, tight) with tight the int64 positions (bytearray) of the pairs whose
   reduced cost is at most tol. */
static PyObject *graph_check(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *orow, *ocol, *oval, *ou, *ov, *okeep;
    double tol, margin;
    if (!PyArg_ParseTuple(args, "OOOOOddO", &orow, &ocol, &oval, &ou, &ov, &tol, &margin,
                          &okeep))
        return NULL;
    Py_buffer br, bc, bv, bu, bvv, bk;
    int got = 0;
    PyObject *result = NULL;
    Buf tight = {0};
    if (get_buffer(orow, &br, 0, 8, 'i', "rows") < 0) return NULL;
    got = 1;
    if (get_buffer(ocol, &bc, 0, 8, 'i', "cols") < 0) goto done;
    got = 2;
    if (get_buffer(oval, &bv, 0, 8, 'd', "values") < 0) goto done;
    got = 3;
    if (get_buffer(ou, &bu, 0, 8, 'd', "u") < 0) goto done;
    got = 4;
    if (get_buffer(ov, &bvv, 0, 8, 'd', "v") < 0) goto done;
    got = 5;
    if (get_buffer(okeep, &bk, 1, 1, 'b', "keep") < 0) goto done;
    got = 6;
    {
        Py_ssize_t m = br.len / 8, n_u = bu.len / 8, n_v = bvv.len / 8;
        const i64 *r = br.buf, *c = bc.buf;
        const double *x = bv.buf, *u = bu.buf, *v = bvv.buf;
        unsigned char *keep = bk.buf;
        if (bc.len != br.len || bv.len != br.len || bk.len != m) {
            PyErr_SetString(PyExc_ValueError, "graph_check: inconsistent sizes");
            goto done;
        }
        int violated = 0;
        for (Py_ssize_t t = 0; t < m; t++) {
            if (r[t] < 0 || r[t] >= n_u || c[t] < 0 || c[t] >= n_v) {
                PyErr_SetString(PyExc_ValueError, "graph_check: index out of range");
                goto done;
            }
            if (x[t] - u[r[t]] - v[c[t]] < -tol) {
                violated = 1;
                break;
            }
        }
        if (violated) {
            for (Py_ssize_t t = 0; t < m; t++)
                if (x[t] - u[r[t]] - v[c[t]] <= margin)
                    keep[t] = 1;
            result = Py_BuildValue("(OO)", Py_True, Py_None);
            goto done;
        }
        for (Py_ssize_t t = 0; t < m; t++)
            if (x[t] - u[r[t]] - v[c[t]] <= tol) {
                i64 at = t;
                if (buf_reserve(&tight, 8) < 0)
                    goto done;
                memcpy(tight.data + tight.size, &at, 8);
                tight.size += 8;
            }
        PyObject *positions = PyByteArray_FromStringAndSize(tight.data ? tight.data : "",
                                                            tight.size);
        if (positions) {
            result = PyTuple_Pack(2, Py_False, positions);
            Py_DECREF(positions);
        }
    }
done:
    free(tight.data);
    if (got >= 6) PyBuffer_Release(&bk);
    if (got >= 5) PyBuffer_Release(&bvv);
    if (got >= 4) PyBuffer_Release(&bu);
    if (got >= 3) PyBuffer_Release(&bv);
    if (got >= 2) PyBuffer_Release(&bc);
    if (got >= 1) PyBuffer_Release(&br);
    return result;
}

/* ------------------------------------------------------------------ assignment */
typedef struct {
    double key;
    i64 j; /* column; its rank among ties: a free column (assigned = 0) first */
    i64 assigned;
} Entry;

static inline int entry_less(const Entry *x, const Entry *y)
{
    return x->key < y->key || (x->key == y->key && x->assigned < y->assigned);
}

/* binary min-heap of (tentative length, column), stale entries skipped when popped */
typedef struct {
    Entry *a;
    Py_ssize_t size;
} MinHeap;

static void minheap_push(MinHeap *h, double key, i64 j, i64 assigned)
{
    Entry e = {key, j, assigned};
    Py_ssize_t k = h->size++;
    while (k > 0) {
        Py_ssize_t parent = (k - 1) / 2;
        if (!entry_less(&e, &h->a[parent]))
            break;
        h->a[k] = h->a[parent];
        k = parent;
    }
    h->a[k] = e;
}

static void minheap_pop(MinHeap *h)
{
    Entry last = h->a[--h->size];
    Py_ssize_t k = 0, n = h->size;
    for (;;) {
        Py_ssize_t c = 2 * k + 1;
        if (c >= n)
            break;
        if (c + 1 < n && entry_less(&h->a[c + 1], &h->a[c]))
            c++;
        if (!entry_less(&h->a[c], &last))
            break;
        h->a[k] = h->a[c];
        k = c;
    }
    if (n)
        h->a[k] = last;
}

/* indexed max-heap of the columns by v (pos[j] = -1 when j is out) */
typedef struct {
    i64 *a, *pos;
    const double *v;
    Py_ssize_t size;
} VHeap;

static void vheap_place(VHeap *h, Py_ssize_t k, i64 j)
{
    h->a[k] = j;
    h->pos[j] = k;
}

static void vheap_up(VHeap *h, Py_ssize_t k)
{
    i64 j = h->a[k];
    double key = h->v[j];
    while (k > 0) {
        Py_ssize_t parent = (k - 1) / 2;
        if (h->v[h->a[parent]] >= key)
            break;
        vheap_place(h, k, h->a[parent]);
        k = parent;
    }
    vheap_place(h, k, j);
}

static void vheap_down(VHeap *h, Py_ssize_t k)
{
    i64 j = h->a[k];
    double key = h->v[j];
    Py_ssize_t n = h->size;
    for (;;) {
        Py_ssize_t c = 2 * k + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h->v[h->a[c + 1]] > h->v[h->a[c]])
            c++;
        if (h->v[h->a[c]] <= key)
            break;
        vheap_place(h, k, h->a[c]);
        k = c;
    }
    vheap_place(h, k, j);
}

static void vheap_insert(VHeap *h, i64 j)
{
    Py_ssize_t k = h->size++;
    vheap_place(h, k, j);
    vheap_up(h, k);
}

static void vheap_remove(VHeap *h, i64 j)
{
    Py_ssize_t k = h->pos[j];
    h->pos[j] = -1;
    i64 last = h->a[--h->size];
    if (k == h->size)
        return;
    vheap_place(h, k, last);
    vheap_up(h, k);
    vheap_down(h, h->pos[last]);
}

/* A best-first walk down the v-heap keeps, in walk[0..size), a max-heap of v-heap positions
   ordered by the v of their columns. walk_pop takes the position of largest v off it;
   walk_push_children adds the two heap children of position p. */
static i64 walk_pop(const VHeap *vh, i64 *walk, Py_ssize_t *size_io)
{
    const double *v = vh->v;
    Py_ssize_t size = *size_io;
    i64 p = walk[0], last = walk[--size];
    Py_ssize_t k = 0;
    for (;;) {
        Py_ssize_t c = 2 * k + 1;
        if (c >= size)
            break;
        if (c + 1 < size && v[vh->a[walk[c + 1]]] > v[vh->a[walk[c]]])
            c++;
        if (v[vh->a[walk[c]]] <= v[vh->a[last]])
            break;
        walk[k] = walk[c];
        k = c;
    }
    if (size)
        walk[k] = last;
    *size_io = size;
    return p;
}

static void walk_push_children(const VHeap *vh, i64 *walk, Py_ssize_t *size_io, i64 p)
{
    const double *v = vh->v;
    Py_ssize_t size = *size_io;
    for (i64 ch = 2 * p + 1; ch <= 2 * p + 2 && ch < vh->size; ch++) {
        Py_ssize_t q = size++;
        while (q > 0) {
            Py_ssize_t parent = (q - 1) / 2;
            if (v[vh->a[walk[parent]]] >= v[vh->a[ch]])
                break;
            walk[q] = walk[parent];
            q = parent;
        }
        walk[q] = ch;
    }
    *size_io = size;
}

/* The two smallest reduced costs c_ij - v_j of row i over every column, listed pairs and
   implicit ones (cost 1; the best of these are the columns of largest v that row i does not
   list, found by a best-first walk down the v-heap). mark[j] == stamp flags row i's listed
   columns; walk is scratch of at least 2 * (row length + 3) entries. */
static void two_smallest(Py_ssize_t i, Py_ssize_t n_a, const i64 *ptr, const i64 *idx,
                         const double *val, const double *v, const VHeap *vh, i64 *mark,
                         i64 stamp, i64 *walk, double *u1, i64 *j1, double *u2, i64 *j2)
{
    double b1 = HUGE_VAL, b2 = HUGE_VAL;
    i64 c1 = -1, c2 = -1;
    i64 lo = i < n_a ? ptr[i] : 0, hi = i < n_a ? ptr[i + 1] : 0;
    for (i64 t = lo; t < hi; t++) {
        i64 j = idx[t];
        double r = val[t] - v[j];
        mark[j] = stamp;
        if (r < b1) {
            b2 = b1;
            c2 = c1;
            b1 = r;
            c1 = j;
        } else if (r < b2) {
            b2 = r;
            c2 = j;
        }
    }
    /* best-first over heap positions (a max-heap of positions by v) */
    Py_ssize_t size = 0, found = 0;
    if (vh->size)
        walk[size++] = 0;
    while (size && found < 2) {
        /* pop the position of largest v */
        i64 p = walk_pop(vh, walk, &size);
        i64 j = vh->a[p];
        if (mark[j] != stamp) {
            found++;
            double r = 1.0 - v[j];
            if (r < b1) {
                b2 = b1;
                c2 = c1;
                b1 = r;
                c1 = j;
            } else if (r < b2) {
                b2 = r;
                c2 = j;
            }
        }
        walk_push_children(vh, walk, &size, p);
    }
    *u1 = b1;
    *j1 = c1;
    *u2 = b2;
    *j2 = c2;
}

/* the column of largest v not scanned yet (-1: none), by a best-first walk down the v-heap
   past the scanned ones; walk holds at least 2 * n + 2 entries */
static i64 max_unscanned(const VHeap *vh, const char *scanned, i64 *walk)
{
    Py_ssize_t size = 0;
    if (vh->size)
        walk[size++] = 0;
    while (size) {
        i64 p = walk_pop(vh, walk, &size);
        if (!scanned[vh->a[p]])
            return vh->a[p];
        walk_push_children(vh, walk, &size, p);
    }
    return -1;
}

static double pair_cost(Py_ssize_t i, i64 j, Py_ssize_t n_a, const i64 *ptr, const i64 *idx,
                        const double *val)
{
    if (i < n_a)
        for (i64 t = ptr[i]; t < ptr[i + 1]; t++)
            if (idx[t] == j)
                return val[t];
    return 1.0;
}

static int sap_solve(Py_ssize_t n_a, Py_ssize_t n_b, const i64 *ptr, const i64 *idx,
                     const double *val, i64 *col_of, double *u, double *v, int warm)
{
    Py_ssize_t n = n_a > n_b ? n_a : n_b;
    int status = -2;
    i64 *row_of = malloc((size_t)(n + 1) * sizeof(i64));
    i64 *pred = malloc((size_t)(n + 1) * sizeof(i64));
    i64 *arg = malloc((size_t)(n + 1) * sizeof(i64));
    i64 *seen = malloc((size_t)(n + 1) * sizeof(i64)); /* columns given a length */
    i64 *done = malloc((size_t)(n + 1) * sizeof(i64)); /* columns scanned, in order */
    double *d = malloc((size_t)(n + 1) * sizeof(double));
    char *scanned = calloc((size_t)n + 1, 1);
    i64 *vh_a = malloc((size_t)(n + 1) * sizeof(i64));
    i64 *vh_pos = malloc((size_t)(n + 1) * sizeof(i64));
    Py_ssize_t nnz = ptr[n_a];
    i64 *free_rows = malloc((size_t)(n + 1) * sizeof(i64));
    i64 *mark = calloc((size_t)n + 1, sizeof(i64));
    i64 *walk = NULL;
    i64 *walk2 = malloc((size_t)(2 * n + 4) * sizeof(i64));
    i64 *free_cols = malloc((size_t)(n + 1) * sizeof(i64));
    MinHeap heap = {malloc((size_t)(nnz + n + 1) * sizeof(Entry)), 0};
    if (!row_of || !pred || !arg || !seen || !done || !d || !scanned || !vh_a || !vh_pos ||
        !heap.a || !free_rows || !mark || !walk2 || !free_cols)
        goto out;
    for (Py_ssize_t t = 0; t < nnz; t++)
        if (idx[t] < 0 || idx[t] >= n_b) {
            status = -1;
            goto out;
        }
    i64 max_len = 0, stamp = 0;
    for (Py_ssize_t i = 0; i < n_a; i++)
        if (ptr[i + 1] - ptr[i] > max_len)
            max_len = ptr[i + 1] - ptr[i];
    walk = malloc((size_t)(2 * max_len + 8) * sizeof(i64));
    if (!walk)
        goto out;
    VHeap vh = {vh_a, vh_pos, v, 0};
    for (Py_ssize_t j = 0; j < n; j++)
        d[j] = HUGE_VAL;
    if (warm) {
        /* warm start from an optimal matching and dual of a problem with fewer listed
           pairs (the caller's earlier core): each row's u drops to its least reduced cost
           where a new pair undercuts it, and a row whose pair is then no longer tight is
           freed; v is kept, so the dual stays feasible and the other pairs tight */
        for (Py_ssize_t j = 0; j < n; j++)
            row_of[j] = -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (col_of[i] < 0 || col_of[i] >= n || row_of[col_of[i]] >= 0) {
                status = -1;
                goto out;
            }
            row_of[col_of[i]] = i;
        }
        for (Py_ssize_t j = 0; j < n; j++)
            vheap_insert(&vh, j);
        for (Py_ssize_t i = 0; i < n; i++) {
            double u1, u2;
            i64 j1, j2;
            two_smallest(i, n_a, ptr, idx, val, v, &vh, mark, ++stamp, walk, &u1, &j1, &u2,
                         &j2);
            if (u1 < u[i]) {
                /* (a drop within rounding keeps the pair: its reduced cost stays ~0) */
                if (u[i] - u1 > 1e-12 &&
                    pair_cost(i, col_of[i], n_a, ptr, idx, val) - v[col_of[i]] > u1) {
                    row_of[col_of[i]] = -1;
                    col_of[i] = -1;
                }
                u[i] = u1;
            }
        }
    } else {
        /* column reduction: v_j = min_i c_ij (every column has cost-1 pairs unless all n
           rows list it; the listed costs are at most 1, so min(1, listed) is a lower bound
           either way and feasible), u = 0 */
        for (Py_ssize_t j = 0; j < n; j++) {
            v[j] = 1.0;
            arg[j] = -1;
            row_of[j] = -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            u[i] = 0.0;
            col_of[i] = -1;
        }
        for (Py_ssize_t i = 0; i < n_a; i++)
            for (i64 t = ptr[i]; t < ptr[i + 1]; t++)
                if (val[t] < v[idx[t]]) {
                    v[idx[t]] = val[t];
                    arg[idx[t]] = i;
                }
        /* greedy: a column takes the row of its minimum when that row is still free */
        for (Py_ssize_t j = n - 1; j >= 0; j--) {
            i64 i = arg[j];
            if (i >= 0 && col_of[i] < 0) {
                col_of[i] = j;
                row_of[j] = i;
            }
        }
        for (Py_ssize_t j = 0; j < n; j++)
            vheap_insert(&vh, j);
        /* augmenting row reduction (Jonker and Volgenant 1987, two passes): a free row takes
           the column of its least reduced cost, that column's v drops by the gap to the second
           least (so the row's pair is a least one of the row), and the column's former row is
           freed. Every assigned row keeps a least-reduced-cost column, so u_i = c_i,col(i) -
           v_col(i) is a feasible dual with the matching tight. */
        if (n >= 2) {
            Py_ssize_t n_free = 0;
            for (Py_ssize_t i = 0; i < n; i++)
                if (col_of[i] < 0)
                    free_rows[n_free++] = i;
            i64 budget = 4 * (i64)n;
            for (int pass = 0; pass < 2 && n_free; pass++) {
                Py_ssize_t k = 0, previous = n_free;
                n_free = 0;
                while (k < previous) {
                    i64 i = free_rows[k++], j1, j2;
                    double u1, u2;
                    two_smallest(i, n_a, ptr, idx, val, v, &vh, mark, ++stamp, walk, &u1, &j1,
                                 &u2, &j2);
                    i64 i0 = row_of[j1];
                    if (u1 < u2) {
                        v[j1] -= u2 - u1;
                        vheap_down(&vh, vh.pos[j1]);
                    } else if (i0 >= 0) {
                        j1 = j2;
                        i0 = row_of[j2];
                    }
                    if (i0 >= 0)
                        col_of[i0] = -1;
                    col_of[i] = j1;
                    row_of[j1] = i;
                    if (i0 >= 0) {
                        if (u1 < u2 && budget-- > 0)
                            free_rows[--k] = i0;
                        else
                            free_rows[n_free++] = i0;
                    }
                }
            }
        }
        for (Py_ssize_t i = 0; i < n; i++)
            u[i] = col_of[i] >= 0 ? pair_cost(i, col_of[i], n_a, ptr, idx, val) - v[col_of[i]]
                                  : 0.0;
    }
    /* the free columns: their v does not change below until they are taken */
    Py_ssize_t n_free_cols = 0;
    for (Py_ssize_t j = 0; j < n; j++)
        if (row_of[j] < 0)
            free_cols[n_free_cols++] = j;
    for (Py_ssize_t s = 0; s < n; s++) {
        if (col_of[s] >= 0)
            continue;
        Py_ssize_t n_seen = 0, n_done = 0;
        double hub = HUGE_VAL, vfree = -HUGE_VAL;
        for (Py_ssize_t k = 0; k < n_free_cols; k++)
            if (v[free_cols[k]] > vfree)
                vfree = v[free_cols[k]];
        /* bound: the length of some augmenting path found so far; a column farther than
           that is never scanned before the sink, so it is not queued */
        double bound = HUGE_VAL;
        i64 hub_row = -1, sink = -1, i = s, jv = -1;
        double base = 0.0, delta = 0.0;
        heap.size = 0;
        for (;;) {
            /* scan row i, reached at path length base */
            double ui = u[i];
            if (i < n_a)
                for (i64 t = ptr[i]; t < ptr[i + 1]; t++) {
                    i64 j = idx[t];
                    if (scanned[j])
                        continue;
                    double nd = base + val[t] - ui - v[j];
                    if (nd < d[j] && nd < bound) {
                        if (d[j] == HUGE_VAL)
                            seen[n_seen++] = j;
                        d[j] = nd;
                        pred[j] = i;
                        minheap_push(&heap, nd, j, row_of[j] >= 0);
                        if (row_of[j] < 0)
                            bound = nd;
                    }
                }
            double h = base + 1.0 - ui;
            if (h < hub) {
                hub = h;
                hub_row = i;
                if (hub - vfree < bound)
                    bound = hub - vfree;
            }
            /* next column: the shorter of the listed pairs' best and the hub's (the column
               of largest v not scanned yet; H - max v over all columns bounds it below) */
            while (heap.size && (scanned[heap.a[0].j] || heap.a[0].key != d[heap.a[0].j]))
                minheap_pop(&heap);
            double gd = heap.size ? heap.a[0].key : HUGE_VAL;
            i64 j = -1;
            if (!(gd < hub - v[vh.a[0]])) {
                /* v is fixed during a search and scanned columns only accrue: the column
                   of largest v not scanned changes only when it is scanned */
                if (jv < 0 || scanned[jv])
                    jv = max_unscanned(&vh, scanned, walk2);
                double hd = jv >= 0 ? hub - v[jv] : HUGE_VAL;
                if (jv >= 0 &&
                    !(gd < hd || (gd == hd && (!heap.a[0].assigned || row_of[jv] >= 0)))) {
                    j = jv;
                    if (d[j] == HUGE_VAL)
                        seen[n_seen++] = j;
                    d[j] = hd;
                    pred[j] = hub_row;
                }
            }
            if (j < 0 && heap.size) {
                j = heap.a[0].j;
                minheap_pop(&heap);
            }
            if (j < 0) { /* cannot happen: a free row leaves a free column */
                status = -3;
                goto out;
            }
            scanned[j] = 1;
            done[n_done++] = j;
            if (row_of[j] < 0) {
                sink = j;
                delta = d[j];
                break;
            }
            i = row_of[j];
            base = d[j];
        }
        /* dual update on the scanned rows and columns (the sink's change is 0) */
        u[s] += delta;
        for (Py_ssize_t k = 0; k < n_done; k++) {
            i64 j = done[k];
            if (j == sink)
                continue;
            u[row_of[j]] += delta - d[j];
            v[j] -= delta - d[j];
            vheap_down(&vh, vh.pos[j]); /* v only decreased; one key at a time */
        }
        /* augment along the path */
        for (i64 j = sink;;) {
            i64 r = pred[j], next = col_of[r];
            col_of[r] = j;
            row_of[j] = r;
            if (r == s)
                break;
            j = next;
        }
        for (Py_ssize_t k = 0; k < n_free_cols; k++)
            if (free_cols[k] == sink) {
                free_cols[k] = free_cols[--n_free_cols];
                break;
            }
        for (Py_ssize_t k = 0; k < n_done; k++)
            scanned[done[k]] = 0;
        for (Py_ssize_t k = 0; k < n_seen; k++)
            d[seen[k]] = HUGE_VAL;
    }
    /* complementary slackness exactly: u_i = c_i,col(i) - v_col(i) */
    for (Py_ssize_t i = 0; i < n; i++)
        u[i] = pair_cost(i, col_of[i], n_a, ptr, idx, val) - v[col_of[i]];
    status = 0;
out:
    free(row_of);
    free(pred);
    free(arg);
    free(seen);
    free(done);
    free(d);
    free(scanned);
    free(vh_a);
    free(vh_pos);
    free(heap.a);
    free(free_rows);
    free(mark);
    free(walk);
    free(walk2);
    free(free_cols);
    return status;
}

static PyObject *solve(PyObject *self, PyObject *args)
{
    (void)self;
    Py_ssize_t n_a, n_b;
    PyObject *optr, *oidx, *oval, *ocol, *ou, *ov;
    int warm = 0;
    if (!PyArg_ParseTuple(args, "nnOOOOOO|p", &n_a, &n_b, &optr, &oidx, &oval, &ocol, &ou,
                          &ov, &warm))
        return NULL;
    Py_buffer bp, bi, bv, bc, bu, bvv;
    int got = 0, status = -2;
    PyObject *result = NULL;
    Py_ssize_t n = n_a > n_b ? n_a : n_b;
    if (get_buffer(optr, &bp, 0, 8, 'i', "indptr") < 0) return NULL;
    got = 1;
    if (get_buffer(oidx, &bi, 0, 8, 'i', "indices") < 0) goto done;
    got = 2;
    if (get_buffer(oval, &bv, 0, 8, 'd', "values") < 0) goto done;
    got = 3;
    if (get_buffer(ocol, &bc, 1, 8, 'i', "col_of") < 0) goto done;
    got = 4;
    if (get_buffer(ou, &bu, 1, 8, 'd', "u") < 0) goto done;
    got = 5;
    if (get_buffer(ov, &bvv, 1, 8, 'd', "v") < 0) goto done;
    got = 6;
    {
        const i64 *ptr = bp.buf;
        if (n_a < 0 || n_b < 0 || bp.len / 8 != n_a + 1 || bc.len / 8 != n ||
            bu.len / 8 != n || bvv.len / 8 != n || bi.len != bv.len || ptr[0] != 0 ||
            ptr[n_a] != bi.len / 8) {
            PyErr_SetString(PyExc_ValueError, "solve: inconsistent array sizes");
            goto done;
        }
        for (Py_ssize_t i = 0; i < n_a; i++)
            if (ptr[i + 1] < ptr[i]) {
                PyErr_SetString(PyExc_ValueError, "solve: indptr decreases");
                goto done;
            }
        if (n > 0) {
            Py_BEGIN_ALLOW_THREADS
            status = sap_solve(n_a, n_b, ptr, bi.buf, bv.buf, bc.buf, bu.buf, bvv.buf, warm);
            Py_END_ALLOW_THREADS
        } else {
            status = 0;
        }
        if (status == -2)
            PyErr_NoMemory();
        else if (status == -1)
            PyErr_SetString(PyExc_ValueError, "solve: column index out of range");
        else if (status < 0)
            PyErr_SetString(PyExc_RuntimeError, "solve: no augmenting path (internal)");
        else
            result = Py_NewRef(Py_None);
    }
done:
    if (got >= 6) PyBuffer_Release(&bvv);
    if (got >= 5) PyBuffer_Release(&bu);
    if (got >= 4) PyBuffer_Release(&bc);
    if (got >= 3) PyBuffer_Release(&bv);
    if (got >= 2) PyBuffer_Release(&bi);
    if (got >= 1) PyBuffer_Release(&bp);
    return result;
}

/* ------------------------------------------------------------------ potentials */
/* potentials(k, head, w, hub_w, p, step) -> bool
   Largest p' <= p with p'_l <= p'_k + w_t for every exchange t (k[t] -> head[t], k sorted)
   and p'_l <= p'_k + hub_w[k] for every pair of nodes (through one hub node; hub_w may be
   inf), found in place by a label-correcting search (first in, first out): a node whose
   potential dropped by more than `step` is queued again. These are shortest-path lengths
   from a source joined to every node at length p; without a negative cycle the search
   ends. Returns False (p then unusable) when it has not ended after (2n + 8) (n + 1)
   scans, as the Bellman-Ford rounds of the NumPy path would not have either. */
static PyObject *potentials(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *ok_, *oh, *ow, *ohub, *op;
    double step;
    if (!PyArg_ParseTuple(args, "OOOOOd", &ok_, &oh, &ow, &ohub, &op, &step))
        return NULL;
    Py_buffer bk, bh, bw, bhub, bp;
    int got = 0;
    PyObject *result = NULL;
    i64 *ptr = NULL, *queue = NULL;
    char *inq = NULL;
    if (get_buffer(ok_, &bk, 0, 8, 'i', "k") < 0) return NULL;
    got = 1;
    if (get_buffer(oh, &bh, 0, 8, 'i', "head") < 0) goto done;
    got = 2;
    if (get_buffer(ow, &bw, 0, 8, 'd', "w") < 0) goto done;
    got = 3;
    if (get_buffer(ohub, &bhub, 0, 8, 'd', "hub_w") < 0) goto done;
    got = 4;
    if (get_buffer(op, &bp, 1, 8, 'd', "p") < 0) goto done;
    got = 5;
    {
        Py_ssize_t n = bp.len / 8, m = bk.len / 8;
        const i64 *k = bk.buf, *head = bh.buf;
        const double *w = bw.buf, *hub_w = bhub.buf;
        double *p = bp.buf;
        if (bh.len != bk.len || bw.len / 8 != m || bhub.len / 8 != n) {
            PyErr_SetString(PyExc_ValueError, "potentials: inconsistent sizes");
            goto done;
        }
        ptr = calloc((size_t)n + 2, sizeof(i64));
        queue = malloc(((size_t)n + 2) * sizeof(i64));
        inq = calloc((size_t)n + 2, 1);
        if (!ptr || !queue || !inq) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t t = 0; t < m; t++) {
            if (k[t] < 0 || k[t] >= n || head[t] < 0 || head[t] >= n ||
                (t && k[t] < k[t - 1])) {
                PyErr_SetString(PyExc_ValueError, "potentials: k unsorted or out of range");
                goto done;
            }
            ptr[k[t] + 1]++;
        }
        for (Py_ssize_t x = 0; x < n; x++)
            ptr[x + 1] += ptr[x];
        int converged = 0;
        Py_BEGIN_ALLOW_THREADS
        /* circular queue of nodes 0..n-1 and the hub n */
        Py_ssize_t cap = n + 1, head_q = 0, size = 0;
        for (Py_ssize_t x = 0; x < n; x++) {
            queue[size++] = x;
            inq[x] = 1;
        }
        double hub = HUGE_VAL;
        long long budget = (2LL * n + 8) * (n + 1), scans = 0;
        while (size && scans++ < budget) {
            i64 x = queue[head_q];
            head_q = (head_q + 1) % cap;
            size--;
            inq[x] = 0;
            if (x == n) {
                for (Py_ssize_t l = 0; l < n; l++)
                    if (hub < p[l] - step) {
                        p[l] = hub;
                        if (!inq[l]) {
                            queue[(head_q + size) % cap] = l;
                            size++;
                            inq[l] = 1;
                        }
                    }
                continue;
            }
            double px = p[x];
            for (i64 t = ptr[x]; t < ptr[x + 1]; t++) {
                i64 l = head[t];
                double nv = px + w[t];
                if (nv < p[l] - step) {
                    p[l] = nv;
                    if (!inq[l]) {
                        queue[(head_q + size) % cap] = l;
                        size++;
                        inq[l] = 1;
                    }
                }
            }
            double hv = px + hub_w[x];
            if (hv < hub) {
                hub = hv;
                if (!inq[n]) {
                    queue[(head_q + size) % cap] = n;
                    size++;
                    inq[n] = 1;
                }
            }
        }
        converged = size == 0;
        Py_END_ALLOW_THREADS
        result = PyBool_FromLong(converged);
    }
done:
    free(ptr);
    free(queue);
    free(inq);
    if (got >= 5) PyBuffer_Release(&bp);
    if (got >= 4) PyBuffer_Release(&bhub);
    if (got >= 3) PyBuffer_Release(&bw);
    if (got >= 2) PyBuffer_Release(&bh);
    if (got >= 1) PyBuffer_Release(&bk);
    return result;
}

static PyMethodDef methods[] = {
    {"graph_check", graph_check, METH_VARARGS,
     "graph_check(rows, cols, values, u, v, tol, margin, keep) -> (violated, tight)"},
    {"potentials", potentials, METH_VARARGS,
     "potentials(k, head, w, hub_w, p, step) -> bool"},
    {"jaccard", jaccard, METH_VARARGS,
     "jaccard(a_indptr, a_indices, b_indptr, b_indices, col_map, n_cols, dense_out)"},
    {"reduced", reduced, METH_VARARGS,
     "reduced(dense, n_b, rows, u, v, below) -> (rows, cols, values)"},
    {"solve", solve, METH_VARARGS,
     "solve(n_a, n_b, indptr, indices, values, col_of, u, v)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_nnstd_kernels",
    "Compiled kernels of NNSTD (see topo.assignment).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__nnstd_kernels(void) { return PyModule_Create(&module); }
