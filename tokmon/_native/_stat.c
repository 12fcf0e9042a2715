/*
 * tokmon._native._stat: the stat calls of the warm change check's flat walk
 * (tokmon.core.engine.check.Flat.check) in C, with the GIL released. POSIX only: on Windows
 * Python's os.stat computes st_ino and st_dev its own way, so the Python path stays there.
 *
 * The rule that keeps the result exact: C says "as recorded" only when the values it
 * computes are, bit for bit, the ones os.stat's stat_result would give and they equal the
 * recorded entry. Anything else (a failed stat, a value out of int64 range, a differing
 * value) is flagged, and Python looks at every flagged path again with os.stat, as it did
 * before: a flag costs a Python stat, never a different answer.
 *
 * The values, as os.stat makes them (CPython's _pystat_fromstructstat, stat() not lstat()):
 * st_size (off_t, signed), st_ino (unsigned), st_dev (unsigned from 3.12, signed before:
 * equal up to INT64_MAX, above it flagged), st_mtime_ns / st_ctime_ns = seconds * 10^9 +
 * the nanoseconds of st_mtim / st_ctim (st_mtimespec / st_ctimespec on macOS).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifdef _WIN32
#error "tokmon._native._stat is POSIX only (setup.py does not build it on Windows)"
#endif

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#if defined(__APPLE__)
#define MTIME_NSEC(st) ((st).st_mtimespec.tv_nsec)
#define CTIME_NSEC(st) ((st).st_ctimespec.tv_nsec)
#else
#define MTIME_NSEC(st) ((st).st_mtim.tv_nsec)
#define CTIME_NSEC(st) ((st).st_ctim.tv_nsec)
#endif

#define API_VERSION 1 /* checked by check.py */
#define MIN_SPLIT 512 /* fewer paths than this: no second thread (its start costs more) */
#define CHUNK 128     /* paths a thread takes at a time */

/* seconds and nanoseconds as one int64 of nanoseconds; 0 when out of range (flag it) */
static int to_ns(int64_t sec, long nsec, int64_t *out) {
    /* 9223372035 * 10^9 + 999999999 and -9223372036 * 10^9 both fit in int64 */
    if (sec > INT64_C(9223372035) || sec < INT64_C(-9223372036) || nsec < 0 ||
        nsec >= 1000000000L)
        return 0;
    *out = (int64_t)sec * INT64_C(1000000000) + (int64_t)nsec;
    return 1;
}

/* Whether the stat of ``path`` gives exactly ``entry`` (4 int64, read with memcpy: a buffer
 * need not be aligned): for a directory [mtime_ns, ctime_ns, ino, dev], for a transcript
 * [size, mtime_ns, ino, dev]. */
static int same(const char *path, const int64_t *entry, int is_dir) {
    struct stat st;
    int64_t a, b, want[4];
    memcpy(want, entry, sizeof(want));
    if (stat(path, &st) != 0)
        return 0;
    if ((uint64_t)st.st_ino > (uint64_t)INT64_MAX || (uint64_t)st.st_dev > (uint64_t)INT64_MAX)
        return 0;
    if (!to_ns((int64_t)st.st_mtime, (long)MTIME_NSEC(st), &b))
        return 0;
    if (is_dir) {
        a = b;
        if (!to_ns((int64_t)st.st_ctime, (long)CTIME_NSEC(st), &b))
            return 0;
    } else {
        a = (int64_t)st.st_size;
    }
    return a == want[0] && b == want[1] && (int64_t)(uint64_t)st.st_ino == want[2] &&
           (int64_t)(uint64_t)st.st_dev == want[3];
}

/* The stat calls of one check, shared by the threads in chunks of CHUNK paths taken in order
 * (directories first): a thread that starts late, or not at all, leaves its share to the
 * other. A directory not as recorded stops the rest (the walk runs anyway). */
typedef struct {
    const char **paths;
    const int64_t *dsig, *fsig; /* 4 per directory, 4 per transcript */
    unsigned char *flags;       /* 1 per path: set when not as recorded */
    Py_ssize_t nd, n;
    pthread_mutex_t lock;
    Py_ssize_t next; /* the first path no thread took yet */
    int stop;        /* a directory was flagged */
} job;

static int take(job *j, Py_ssize_t *lo, Py_ssize_t *hi) {
    int got = 0;
    pthread_mutex_lock(&j->lock);
    if (!j->stop && j->next < j->n) {
        *lo = j->next;
        *hi = j->n - j->next > CHUNK ? j->next + CHUNK : j->n;
        j->next = *hi;
        got = 1;
    }
    pthread_mutex_unlock(&j->lock);
    return got;
}

static void *work(void *arg) {
    job *j = (job *)arg;
    Py_ssize_t lo, hi, i;
    while (take(j, &lo, &hi)) {
        for (i = lo; i < hi; i++) {
            int is_dir = i < j->nd;
            const int64_t *want = is_dir ? j->dsig + 4 * i : j->fsig + 4 * (i - j->nd);
            if (!same(j->paths[i], want, is_dir)) {
                j->flags[i] = 1;
                if (is_dir) {
                    pthread_mutex_lock(&j->lock);
                    j->stop = 1;
                    pthread_mutex_unlock(&j->lock);
                    return NULL;
                }
            }
        }
    }
    return NULL;
}

/* stat every path on ``threads`` threads (1 or 2); 0 when a directory was flagged */
static int run(job *j, int threads) {
    pthread_t tid;
    int two = threads > 1 && j->n >= MIN_SPLIT;
    if (pthread_mutex_init(&j->lock, NULL) != 0)
        return -1;
    if (two && pthread_create(&tid, NULL, work, j) != 0)
        two = 0; /* no thread: this one does it all */
    work(j);
    if (two)
        pthread_join(tid, NULL);
    pthread_mutex_destroy(&j->lock);
    return !j->stop;
}

static int sig_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t count, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) != 0)
        return 0;
    if (view->len != count * 4 * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes for %zd entries", what, view->len, count);
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(check_doc,
             "check(blob, nd, dsig, fsig, threads=1, /) -> list[int] | None\n\n"
             "``blob``: the flat walk's paths joined by NUL bytes (a buffer), the ``nd`` "
             "directories first, then the transcripts; ``dsig`` / ``fsig``: their recorded "
             "int64 entries, 4 each (buffers). None when a directory's stat is not as recorded "
             "or fails; else the indexes (among the transcripts, ascending) of the transcripts "
             "whose stat is not as recorded, fails or is out of int64 range. The stat calls "
             "run with the GIL released, on ``threads`` (1 or 2) threads.");

static PyObject *check(PyObject *self, PyObject *args) {
    PyObject *blob_obj, *dsig_obj, *fsig_obj, *out = NULL;
    Py_ssize_t nd, nf, total, i, pos, size, flagged = 0;
    int threads = 1;
    Py_buffer blob, dsig, fsig;
    const char **paths = NULL;
    char *last = NULL; /* the last path, NUL-terminated (the others end at their separator) */
    unsigned char *flags = NULL;
    const char *buf;
    (void)self;

    if (!PyArg_ParseTuple(args, "OnOO|i:check", &blob_obj, &nd, &dsig_obj, &fsig_obj, &threads))
        return NULL;
    if (nd < 0) {
        PyErr_SetString(PyExc_ValueError, "nd < 0");
        return NULL;
    }
    if (PyObject_GetBuffer(fsig_obj, &fsig, PyBUF_SIMPLE) != 0)
        return NULL;
    nf = fsig.len / (4 * (Py_ssize_t)sizeof(int64_t));
    PyBuffer_Release(&fsig);
    if (nd > PY_SSIZE_T_MAX / 64 || nf > PY_SSIZE_T_MAX / 64 - nd) {
        PyErr_SetString(PyExc_ValueError, "too many entries");
        return NULL;
    }
    if (PyObject_GetBuffer(blob_obj, &blob, PyBUF_SIMPLE) != 0)
        return NULL;
    if (!sig_buffer(dsig_obj, &dsig, nd, "dsig")) {
        PyBuffer_Release(&blob);
        return NULL;
    }
    if (!sig_buffer(fsig_obj, &fsig, nf, "fsig")) {
        PyBuffer_Release(&dsig);
        PyBuffer_Release(&blob);
        return NULL;
    }
    total = nd + nf;
    buf = (const char *)blob.buf;
    size = blob.len;
    paths = PyMem_Malloc((size_t)(total ? total : 1) * sizeof(*paths));
    flags = PyMem_Calloc((size_t)(total ? total : 1), 1);
    if (paths == NULL || flags == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (total == 0 && size != 0) {
        PyErr_SetString(PyExc_ValueError, "more paths than entries");
        goto done;
    }
    pos = 0;
    for (i = 0; i < total; i++) {
        const char *end;
        if (pos > size) {
            PyErr_SetString(PyExc_ValueError, "fewer paths than entries");
            goto done;
        }
        end = pos < size ? memchr(buf + pos, 0, (size_t)(size - pos)) : NULL;
        if (end != NULL) {
            if (i == total - 1) {
                PyErr_SetString(PyExc_ValueError, "more paths than entries");
                goto done;
            }
            paths[i] = buf + pos;
            pos = end - buf + 1;
        } else {
            if (i != total - 1) {
                PyErr_SetString(PyExc_ValueError, "fewer paths than entries");
                goto done;
            }
            last = PyMem_Malloc((size_t)(size - pos) + 1);
            if (last == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            if (pos < size)
                memcpy(last, buf + pos, (size_t)(size - pos));
            last[size - pos] = '\0';
            paths[i] = last;
        }
    }

    {
        job j;
        int rc;
        memset(&j, 0, sizeof(j));
        j.paths = paths;
        j.dsig = (const int64_t *)dsig.buf;
        j.fsig = (const int64_t *)fsig.buf;
        j.flags = flags;
        j.nd = nd;
        j.n = total;
        Py_BEGIN_ALLOW_THREADS
        rc = run(&j, threads);
        Py_END_ALLOW_THREADS
        if (rc < 0) {
            PyErr_SetString(PyExc_OSError, "cannot initialise a mutex");
            goto done;
        }
        if (rc == 0) {
            Py_INCREF(Py_None);
            out = Py_None;
            goto done;
        }
    }
    for (i = nd; i < total; i++)
        flagged += flags[i];
    out = PyList_New(flagged);
    if (out == NULL)
        goto done;
    pos = 0;
    for (i = 0; i < nf && pos < flagged; i++) {
        if (flags[nd + i]) {
            PyObject *n = PyLong_FromSsize_t(i);
            if (n == NULL) {
                Py_CLEAR(out);
                goto done;
            }
            PyList_SET_ITEM(out, pos++, n);
        }
    }
done:
    PyMem_Free(paths);
    PyMem_Free(flags);
    PyMem_Free(last);
    PyBuffer_Release(&fsig);
    PyBuffer_Release(&dsig);
    PyBuffer_Release(&blob);
    return out;
}

static PyMethodDef methods[] = {
    {"check", check, METH_VARARGS, check_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tokmon._native._stat",
    "The warm change check's stat calls in C (POSIX; see tokmon.core.engine.check.Flat).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__stat(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "API_VERSION", API_VERSION) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
