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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(__APPLE__)
#define ATIME_NSEC(st) ((st).st_atimespec.tv_nsec)
#define MTIME_NSEC(st) ((st).st_mtimespec.tv_nsec)
#define CTIME_NSEC(st) ((st).st_ctimespec.tv_nsec)
#else
#define ATIME_NSEC(st) ((st).st_atim.tv_nsec)
#define MTIME_NSEC(st) ((st).st_mtim.tv_nsec)
#define CTIME_NSEC(st) ((st).st_ctim.tv_nsec)
#endif

#define API_VERSION 1 /* checked by check.py */
#define EARLY_VERSION 1 /* check_start / check_take, checked by flatfile.py */
#define WALK_VERSION 1 /* walk_start / walk_take, checked by discovery.py */
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

/* One check's inputs (the buffers held until it is freed), its paths split out of the blob
 * and one flag per path: check() runs it on the calling thread, check_start() on a thread of
 * its own (check_take() gives the result). */
typedef struct {
    Py_buffer blob, dsig, fsig;
    int have_blob, have_dsig, have_fsig;
    const char **paths;
    char *last; /* the last path, NUL-terminated (the others end at their separator) */
    unsigned char *flags;
    Py_ssize_t nd, nf;
    int threads;
    job j;
    int rc; /* run()'s: 1 done, 0 a directory flagged, -1 no mutex */
    pthread_t tid;
    int started, joined;
    pid_t pid;
} checking;

static void checking_free(checking *c) {
    PyMem_Free(c->paths);
    PyMem_Free(c->flags);
    PyMem_Free(c->last);
    if (c->have_fsig)
        PyBuffer_Release(&c->fsig);
    if (c->have_dsig)
        PyBuffer_Release(&c->dsig);
    if (c->have_blob)
        PyBuffer_Release(&c->blob);
    PyMem_Free(c);
}

/* check()'s arguments taken and the paths split; NULL with an exception set */
static checking *checking_new(PyObject *args, const char *fmt) {
    PyObject *blob_obj, *dsig_obj, *fsig_obj;
    Py_ssize_t nd, nf, total, i, pos, size;
    int threads = 1;
    const char *buf;
    checking *c;

    if (!PyArg_ParseTuple(args, fmt, &blob_obj, &nd, &dsig_obj, &fsig_obj, &threads))
        return NULL;
    if (nd < 0) {
        PyErr_SetString(PyExc_ValueError, "nd < 0");
        return NULL;
    }
    c = PyMem_Calloc(1, sizeof(*c));
    if (c == NULL)
        return (checking *)PyErr_NoMemory();
    c->threads = threads;
    if (PyObject_GetBuffer(fsig_obj, &c->fsig, PyBUF_SIMPLE) != 0)
        goto fail;
    nf = c->fsig.len / (4 * (Py_ssize_t)sizeof(int64_t));
    PyBuffer_Release(&c->fsig);
    if (nd > PY_SSIZE_T_MAX / 64 || nf > PY_SSIZE_T_MAX / 64 - nd) {
        PyErr_SetString(PyExc_ValueError, "too many entries");
        goto fail;
    }
    if (PyObject_GetBuffer(blob_obj, &c->blob, PyBUF_SIMPLE) != 0)
        goto fail;
    c->have_blob = 1;
    if (!sig_buffer(dsig_obj, &c->dsig, nd, "dsig"))
        goto fail;
    c->have_dsig = 1;
    if (!sig_buffer(fsig_obj, &c->fsig, nf, "fsig"))
        goto fail;
    c->have_fsig = 1;
    c->nd = nd;
    c->nf = nf;
    total = nd + nf;
    buf = (const char *)c->blob.buf;
    size = c->blob.len;
    c->paths = PyMem_Malloc((size_t)(total ? total : 1) * sizeof(*c->paths));
    c->flags = PyMem_Calloc((size_t)(total ? total : 1), 1);
    if (c->paths == NULL || c->flags == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if (total == 0 && size != 0) {
        PyErr_SetString(PyExc_ValueError, "more paths than entries");
        goto fail;
    }
    pos = 0;
    for (i = 0; i < total; i++) {
        const char *end;
        if (pos > size) {
            PyErr_SetString(PyExc_ValueError, "fewer paths than entries");
            goto fail;
        }
        end = pos < size ? memchr(buf + pos, 0, (size_t)(size - pos)) : NULL;
        if (end != NULL) {
            if (i == total - 1) {
                PyErr_SetString(PyExc_ValueError, "more paths than entries");
                goto fail;
            }
            c->paths[i] = buf + pos;
            pos = end - buf + 1;
        } else {
            if (i != total - 1) {
                PyErr_SetString(PyExc_ValueError, "fewer paths than entries");
                goto fail;
            }
            c->last = PyMem_Malloc((size_t)(size - pos) + 1);
            if (c->last == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            if (pos < size)
                memcpy(c->last, buf + pos, (size_t)(size - pos));
            c->last[size - pos] = '\0';
            c->paths[i] = c->last;
        }
    }
    c->j.paths = c->paths;
    c->j.dsig = (const int64_t *)c->dsig.buf;
    c->j.fsig = (const int64_t *)c->fsig.buf;
    c->j.flags = c->flags;
    c->j.nd = nd;
    c->j.n = total;
    return c;
fail:
    checking_free(c);
    return NULL;
}

/* run()'s outcome as check() returns it: None (a directory flagged) or the flagged
 * transcripts' indexes */
static PyObject *checking_result(checking *c) {
    PyObject *out;
    Py_ssize_t i, pos = 0, flagged = 0, nd = c->nd;
    if (c->rc < 0) {
        PyErr_SetString(PyExc_OSError, "cannot initialise a mutex");
        return NULL;
    }
    if (c->rc == 0)
        Py_RETURN_NONE;
    for (i = 0; i < c->nf; i++)
        flagged += c->flags[nd + i];
    out = PyList_New(flagged);
    if (out == NULL)
        return NULL;
    for (i = 0; i < c->nf && pos < flagged; i++) {
        if (c->flags[nd + i]) {
            PyObject *n = PyLong_FromSsize_t(i);
            if (n == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyList_SET_ITEM(out, pos++, n);
        }
    }
    return out;
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
    PyObject *out;
    checking *c = checking_new(args, "OnOO|i:check");
    (void)self;
    if (c == NULL)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    c->rc = run(&c->j, c->threads);
    Py_END_ALLOW_THREADS
    out = checking_result(c);
    checking_free(c);
    return out;
}

PyDoc_STRVAR(paths_at_doc,
             "paths_at(blob, indexes, /) -> list[bytes]\n\n"
             "The paths at ``indexes`` (ascending ints) of ``blob``, paths joined by NUL bytes "
             "as check() takes them: the few a check flagged, without splitting them all.");

static PyObject *paths_at(PyObject *self, PyObject *args) {
    PyObject *blob_obj, *idx, *out = NULL;
    Py_buffer blob;
    Py_ssize_t n, k, at = 0, pos = 0, prev = -1;
    const char *buf;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO!:paths_at", &blob_obj, &PyList_Type, &idx))
        return NULL;
    if (PyObject_GetBuffer(blob_obj, &blob, PyBUF_SIMPLE) != 0)
        return NULL;
    buf = (const char *)blob.buf;
    n = PyList_GET_SIZE(idx);
    out = PyList_New(n);
    if (out == NULL)
        goto done;
    for (k = 0; k < n; k++) {
        Py_ssize_t want = PyLong_AsSsize_t(PyList_GET_ITEM(idx, k)), end;
        const char *nul;
        PyObject *b;
        if (want == -1 && PyErr_Occurred())
            goto fail;
        if (want < 0) {
            PyErr_SetString(PyExc_IndexError, "paths_at: index out of range");
            goto fail;
        }
        if (want <= prev) {
            PyErr_SetString(PyExc_ValueError, "paths_at: indexes not ascending");
            goto fail;
        }
        prev = want;
        while (at < want) { /* skip to the start of path ``want`` */
            nul = pos < blob.len ? memchr(buf + pos, 0, (size_t)(blob.len - pos)) : NULL;
            if (nul == NULL) {
                PyErr_SetString(PyExc_IndexError, "paths_at: index out of range");
                goto fail;
            }
            pos = nul - buf + 1;
            at++;
        }
        if (pos > blob.len) {
            PyErr_SetString(PyExc_IndexError, "paths_at: index out of range");
            goto fail;
        }
        nul = pos < blob.len ? memchr(buf + pos, 0, (size_t)(blob.len - pos)) : NULL;
        end = nul != NULL ? nul - buf : blob.len;
        b = PyBytes_FromStringAndSize(buf + pos, end - pos);
        if (b == NULL)
            goto fail;
        PyList_SET_ITEM(out, k, b);
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    PyBuffer_Release(&blob);
    return out;
}

/* --- the same check begun early, on a thread of its own (check_start / check_take) ------
 *
 * A warm report begins its check while the program is still importing (tokmon.__main__,
 * tokmon.core.flatfile): the thread touches no Python object (the buffers are held until
 * the handle goes), so it needs no GIL and runs on the other core meanwhile. */

#define CHECKING "tokmon._native._stat.checking"

static void *checking_thread(void *arg) {
    work(&((checking *)arg)->j);
    return NULL;
}

static void checking_capsule_free(PyObject *cap) {
    checking *c = (checking *)PyCapsule_GetPointer(cap, CHECKING);
    if (c == NULL) {
        PyErr_Clear();
        return;
    }
    if (c->started && !c->joined && c->pid == getpid())
        pthread_join(c->tid, NULL); /* (stat calls only: its end is near) */
    if (c->started)
        pthread_mutex_destroy(&c->j.lock);
    checking_free(c);
}

PyDoc_STRVAR(check_start_doc,
             "check_start(blob, nd, dsig, fsig, /) -> handle\n\n"
             "check()'s stat calls begun on one thread of its own (the buffers are held until "
             "the handle goes); check_take(handle) gives what check() would have returned.");

static PyObject *check_start(PyObject *self, PyObject *args) {
    PyObject *cap;
    checking *c = checking_new(args, "OnOO:check_start");
    (void)self;
    if (c == NULL)
        return NULL;
    cap = PyCapsule_New(c, CHECKING, checking_capsule_free);
    if (cap == NULL) {
        checking_free(c);
        return NULL;
    }
    if (pthread_mutex_init(&c->j.lock, NULL) != 0)
        return cap; /* (not started: check_take says so, check() runs instead) */
    {
        /* the thread takes no signal (it would only cut a call short): they go to the others */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        c->pid = getpid();
        if (pthread_create(&c->tid, NULL, checking_thread, c) == 0)
            c->started = 1;
        else
            pthread_mutex_destroy(&c->j.lock);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return cap;
}

PyDoc_STRVAR(check_take_doc,
             "check_take(handle, /) -> list[int] | None\n\n"
             "Finish the check begun by check_start (the calling thread takes the paths its "
             "thread has not reached yet) and return what check() returns for its "
             "arguments; raises RuntimeError when it has no result to give (taken before, no "
             "thread could be started, a forked child): check() then runs instead.");

static PyObject *check_take(PyObject *self, PyObject *args) {
    PyObject *cap;
    checking *c;
    (void)self;
    if (!PyArg_ParseTuple(args, "O:check_take", &cap))
        return NULL;
    c = (checking *)PyCapsule_GetPointer(cap, CHECKING);
    if (c == NULL)
        return NULL;
    if (!c->started || c->joined || c->pid != getpid()) {
        PyErr_SetString(PyExc_RuntimeError, "check_take: no check to take");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    work(&c->j); /* the paths the thread has not taken yet: this thread takes its share */
    pthread_join(c->tid, NULL);
    Py_END_ALLOW_THREADS
    c->joined = 1;
    c->rc = !c->j.stop;
    return checking_result(c);
}

/* --- a first scan's walk (discovery.transcript_stats without a listing), on a thread ------
 *
 * walk_start(root) begins, on a thread of its own (no GIL, no Python object touched), the walk
 * transcript_stats makes when it has no stored listing to reuse: from ``root`` down, one stat
 * and one listing per directory (the clock read before the stat, as ``listed``), the
 * subdirectories pushed in listing order and taken last first, a stat of every ``*.jsonl``
 * entry that is not a directory. walk_take(handle) waits for it and hands the result over.
 * Anything the plain case does not cover (a symbolic link, an entry of unknown kind that
 * cannot be looked at, any failed call, an id past int64) ends it with no result: Python
 * walks again, its own way (its warnings, its rules for links). So the result, when there is
 * one, is exactly what Python's walk would have found at that moment. */

typedef struct {
    int64_t v[13]; /* mode, ino, dev, nlink, uid, gid, size, atime s, mtime s, ctime s,
                      atime ns, mtime ns, ctime ns (as os.stat gives them) */
} wstat;

typedef struct {
    size_t path; /* offset of its path in the arena */
    int64_t listed;
    wstat st;
    size_t first, count; /* its entries in names/kinds */
} wdir;

typedef struct {
    size_t path;
    wstat st;
} wfile;

typedef struct {
    char *arena;
    size_t used, cap;
    wdir *dirs;
    size_t nd, capd;
    wfile *files;
    size_t nf, capf;
    size_t *names; /* arena offsets of the entries' names */
    char *kinds;   /* 'd' or 'f' per entry */
    size_t nn, capn, capk;
    size_t *stack;
    size_t sp, caps;
    int ok;
    pthread_t tid;
    pid_t pid; /* the process that started it (a forked child has no such thread) */
    int started, joined;
} walker;

/* Room for ``need`` items of ``size`` bytes in ``*buf`` (``*cap`` items now): pages mapped
 * for it alone, not the C library's heap: the walk runs on a thread of its own, whose heap
 * would keep the pages after the walk (~0.5 MB of a cold scan's peak RSS at 500 MB) */
static int grow(void **buf, size_t *cap, size_t need, size_t size) {
    size_t n, bytes;
    void *q;
    if (need <= *cap)
        return 1;
    n = *cap ? *cap * 2 : (size < 4096 ? 4096 / size : 1);
    while (n < need)
        n *= 2;
    bytes = n * size;
    q = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (q == MAP_FAILED)
        return 0;
    if (*buf != NULL) {
        memcpy(q, *buf, *cap * size);
        munmap(*buf, *cap * size);
    }
    *buf = q;
    *cap = n;
    return 1;
}

static void unmap(void *buf, size_t cap, size_t size) {
    if (buf != NULL)
        munmap(buf, cap * size);
}

/* ``a`` + (a "/" unless ``a`` ends in one, as os.scandir's DirEntry.path) + ``b`` into the
 * arena; its offset, or (size_t)-1 when out of memory */
static size_t put_path(walker *w, size_t a, const char *b, size_t bl) {
    size_t al = a == (size_t)-1 ? 0 : strlen(w->arena + a), at = w->used, sep;
    sep = al > 0 && w->arena[a + al - 1] != '/';
    if (!grow((void **)&w->arena, &w->cap, w->used + al + sep + bl + 1, 1))
        return (size_t)-1;
    if (al)
        memcpy(w->arena + at, w->arena + a, al);
    if (sep)
        w->arena[at + al] = '/';
    memcpy(w->arena + at + al + sep, b, bl);
    w->arena[at + al + sep + bl] = 0;
    w->used += al + sep + bl + 1;
    return at;
}

/* os.stat's values of ``st``; 0 when an id or a time is out of int64 range */
static int fill(const struct stat *st, wstat *out) {
    int64_t *v = out->v;
    if ((uint64_t)st->st_ino > (uint64_t)INT64_MAX || (uint64_t)st->st_dev > (uint64_t)INT64_MAX)
        return 0;
    v[0] = (int64_t)st->st_mode;
    v[1] = (int64_t)(uint64_t)st->st_ino;
    v[2] = (int64_t)(uint64_t)st->st_dev;
    v[3] = (int64_t)st->st_nlink;
    /* (os.stat gives -1 for the ids (uid_t)-1 and (gid_t)-1) */
    v[4] = st->st_uid == (uid_t)-1 ? -1 : (int64_t)st->st_uid;
    v[5] = st->st_gid == (gid_t)-1 ? -1 : (int64_t)st->st_gid;
    v[6] = (int64_t)st->st_size;
    v[7] = (int64_t)st->st_atime;
    v[8] = (int64_t)st->st_mtime;
    v[9] = (int64_t)st->st_ctime;
    return to_ns(v[7], (long)ATIME_NSEC(*st), &v[10]) &&
           to_ns(v[8], (long)MTIME_NSEC(*st), &v[11]) && to_ns(v[9], (long)CTIME_NSEC(*st), &v[12]);
}

static int is_jsonl(const char *name, size_t n) {
    return n >= 6 && memcmp(name + n - 6, ".jsonl", 6) == 0;
}

/* A directory's entries in the order readdir gives them (os.scandir's order). On Linux read
 * with getdents64 into a buffer on the stack: opendir's buffer, from the C library's heap
 * of this thread, was measured to keep ~0.5 MB more of a cold scan's peak RSS. */
#if defined(__linux__)
#include <stddef.h>
#include <sys/syscall.h>
typedef struct {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[1];
} tk_dirent64;
typedef struct {
    int fd;
    long n, pos;
    union {
        char buf[32768];
        uint64_t align;
    } u;
} dirit;

static int dir_open(dirit *it, int fd) {
    it->fd = fd;
    it->n = it->pos = 0;
    return 1;
}

/* 1 with the next entry's name and d_type, 0 at the end, -1 on an error */
static int dir_next(dirit *it, const char **name, int *type) {
    for (;;) {
        tk_dirent64 *e;
        if (it->pos >= it->n) {
            it->n = (long)syscall(SYS_getdents64, it->fd, it->u.buf, sizeof(it->u.buf));
            it->pos = 0;
            if (it->n <= 0)
                return it->n == 0 ? 0 : -1;
        }
        e = (tk_dirent64 *)(it->u.buf + it->pos);
        it->pos += e->d_reclen;
        if (e->d_ino == 0) /* (a deleted entry: readdir skips it too) */
            continue;
        *name = e->d_name;
        *type = e->d_type;
        return 1;
    }
}

static void dir_close(dirit *it) {
    close(it->fd);
}
#else
typedef struct {
    DIR *dp;
} dirit;

static int dir_open(dirit *it, int fd) {
    it->dp = fdopendir(fd);
    if (it->dp == NULL) {
        close(fd);
        return 0;
    }
    return 1;
}

static int dir_next(dirit *it, const char **name, int *type) {
    struct dirent *e;
    errno = 0;
    e = readdir(it->dp);
    if (e == NULL)
        return errno == 0 ? 0 : -1;
    *name = e->d_name;
    *type = e->d_type;
    return 1;
}

static void dir_close(dirit *it) {
    closedir(it->dp);
}
#endif

/* one directory (its offset ``at``): 1, or 0 to give up */
static int walk_dir(walker *w, size_t at) {
    struct stat st;
    struct timespec now;
    wdir *d;
    dirit it;
    int fd, ok = 0;
    if (!grow((void **)&w->dirs, &w->capd, w->nd + 1, sizeof(wdir)))
        return 0;
    d = &w->dirs[w->nd];
    d->path = at;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0 ||
        !to_ns((int64_t)now.tv_sec, (long)now.tv_nsec, &d->listed))
        return 0;
    if (stat(w->arena + at, &st) != 0 || !fill(&st, &d->st))
        return 0;
    d->first = w->nn;
    d->count = 0;
    w->nd++;
    fd = open(w->arena + at, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    if (!dir_open(&it, fd))
        return 0;
    for (;;) {
        const char *name;
        size_t nl, off;
        int type, got = dir_next(&it, &name, &type);
        if (got <= 0) {
            ok = got == 0;
            break;
        }
        if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0)))
            continue;
        nl = strlen(name);
        if (type == DT_UNKNOWN) { /* (os.scandir then asks lstat) */
            if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                break;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
        }
        if (type == DT_LNK)
            break; /* links: Python's walk, with its rules for them */
        if (type != DT_DIR && !is_jsonl(name, nl))
            continue;
        if (!grow((void **)&w->names, &w->capn, w->nn + 1, sizeof(size_t)) ||
            !grow((void **)&w->kinds, &w->capk, w->nn + 1, 1))
            break;
        /* (w->dirs is not moved below: d stays valid) */
        off = put_path(w, (size_t)-1, name, nl);
        if (off == (size_t)-1)
            break;
        w->names[w->nn] = off;
        w->kinds[w->nn] = type == DT_DIR ? 'd' : 'f';
        w->nn++;
        w->dirs[w->nd - 1].count++;
        off = put_path(w, at, name, nl);
        if (off == (size_t)-1)
            break;
        if (type == DT_DIR) {
            if (!grow((void **)&w->stack, &w->caps, w->sp + 1, sizeof(size_t)))
                break;
            w->stack[w->sp++] = off;
            continue;
        }
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            break;
        if (!S_ISREG(st.st_mode))
            continue; /* listed, not a transcript (os.stat says it is no regular file) */
        if (!grow((void **)&w->files, &w->capf, w->nf + 1, sizeof(wfile)))
            break;
        w->files[w->nf].path = off;
        if (!fill(&st, &w->files[w->nf].st))
            break;
        w->nf++;
    }
    dir_close(&it);
    return ok;
}

static void *walk_thread(void *arg) {
    walker *w = (walker *)arg;
    w->ok = 1;
    while (w->ok && w->sp > 0)
        w->ok = walk_dir(w, w->stack[--w->sp]);
    return NULL;
}

static void walker_free(walker *w) {
    unmap(w->arena, w->cap, 1);
    unmap(w->dirs, w->capd, sizeof(wdir));
    unmap(w->files, w->capf, sizeof(wfile));
    unmap(w->names, w->capn, sizeof(size_t));
    unmap(w->kinds, w->capk, 1);
    unmap(w->stack, w->caps, sizeof(size_t));
    free(w);
}

static void walker_join(walker *w) {
    if (w->started && !w->joined) {
        Py_BEGIN_ALLOW_THREADS pthread_join(w->tid, NULL);
        Py_END_ALLOW_THREADS w->joined = 1;
    }
}

#define WALKER "tokmon._native._stat.walker"

static void walker_capsule_free(PyObject *cap) {
    walker *w = (walker *)PyCapsule_GetPointer(cap, WALKER);
    if (w == NULL) {
        PyErr_Clear();
        return;
    }
    if (w->started && !w->joined && w->pid == getpid())
        pthread_join(w->tid, NULL); /* (a walk's end is near: no call in it waits on anything) */
    walker_free(w);
}

PyDoc_STRVAR(walk_start_doc,
             "walk_start(root, /) -> handle\n\n"
             "Begin the walk of ``root`` (bytes: a path) on a thread of its own; "
             "walk_take(handle) gives its result.");

static PyObject *walk_start(PyObject *self, PyObject *args) {
    const char *root;
    Py_ssize_t rl;
    walker *w;
    PyObject *cap;
    size_t at;
    if (!PyArg_ParseTuple(args, "y#:walk_start", &root, &rl))
        return NULL;
    if ((Py_ssize_t)strlen(root) != rl) {
        PyErr_SetString(PyExc_ValueError, "walk_start: a NUL byte in the path");
        return NULL;
    }
    w = (walker *)calloc(1, sizeof(walker));
    if (w == NULL)
        return PyErr_NoMemory();
    at = put_path(w, (size_t)-1, root, (size_t)rl);
    if (at == (size_t)-1 || !grow((void **)&w->stack, &w->caps, 1, sizeof(size_t))) {
        walker_free(w);
        return PyErr_NoMemory();
    }
    w->stack[w->sp++] = at;
    cap = PyCapsule_New(w, WALKER, walker_capsule_free);
    if (cap == NULL) {
        walker_free(w);
        return NULL;
    }
    {
        /* the thread takes no signal (it would only cut a call short): they go to the others */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        w->pid = getpid();
        if (pthread_create(&w->tid, NULL, walk_thread, w) == 0)
            w->started = 1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return cap;
}

/* os.stat's result for ``v`` (see wstat): an instance of ``type`` (os.stat_result), its 16
 * first fields set as os.stat sets them (the times' floats: seconds + nanoseconds * 1e-9),
 * the others (of its ``fields``) None, as os.stat_result((... 16 values ...)) makes it. (Where
 * the compiler fuses a multiply and an add, a float may differ from os.stat's by its last
 * bit; tokmon reads only the integers.) */
static PyObject *stat_result(PyTypeObject *type, Py_ssize_t fields, const int64_t *v) {
    PyObject *r = PyStructSequence_New(type);
    Py_ssize_t i;
    if (r == NULL)
        return NULL;
    for (i = 0; i < 16; i++) {
        PyObject *x;
        if (i < 10)
            x = PyLong_FromLongLong(v[i]);
        else if (i < 13) /* the float of time i - 10: its seconds and nanoseconds part */
            x = PyFloat_FromDouble((double)v[i - 3] +
                                   (double)(v[i] - v[i - 3] * INT64_C(1000000000)) * 1e-9);
        else
            x = PyLong_FromLongLong(v[i - 3]);
        if (x == NULL) {
            Py_DECREF(r);
            return NULL;
        }
        PyStructSequence_SET_ITEM(r, i, x);
    }
    for (; i < fields; i++) {
        Py_INCREF(Py_None);
        PyStructSequence_SET_ITEM(r, i, Py_None);
    }
    return r;
}

static PyObject *ints(const int64_t *v, int n) {
    PyObject *t = PyTuple_New(n);
    int i;
    if (t == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *x = PyLong_FromLongLong(v[i]);
        if (x == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, x);
    }
    return t;
}

PyDoc_STRVAR(walk_take_doc,
             "walk_take(handle, stat_result, /) -> tuple[list, list] | None\n\n"
             "Wait for the walk begun by walk_start and return (files, dirs), or None when it "
             "gave up (or was taken before). files: (path, st) in the walk's order, ``st`` "
             "made as os.stat makes it (``stat_result``: os.stat_result); dirs: (path, listed, "
             "(mtime_ns, ctime_ns, ino, dev), kinds, names) per directory walked, ``kinds`` one "
             "'d' or 'f' per name. Paths and names are str, decoded as os.fsdecode does.");

static PyObject *walk_take(PyObject *self, PyObject *args) {
    PyObject *cap, *files = NULL, *dirs = NULL, *item;
    PyTypeObject *type;
    walker *w;
    size_t i, j;
    Py_ssize_t fields;
    if (!PyArg_ParseTuple(args, "OO!:walk_take", &cap, &PyType_Type, &type))
        return NULL;
    { /* a struct sequence of os.stat_result's shape: 10 visible fields, 16 or more in all */
        PyObject *nf = PyObject_GetAttrString((PyObject *)type, "n_fields");
        PyObject *ns = PyObject_GetAttrString((PyObject *)type, "n_sequence_fields");
        fields = nf && PyLong_Check(nf) ? PyLong_AsSsize_t(nf) : -1;
        if (!ns || !PyLong_Check(ns) || PyLong_AsSsize_t(ns) != 10 || fields < 16 ||
            !PyType_IsSubtype(type, &PyTuple_Type)) {
            Py_XDECREF(nf);
            Py_XDECREF(ns);
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "walk_take: not os.stat_result");
            return NULL;
        }
        Py_DECREF(nf);
        Py_DECREF(ns);
    }
    w = (walker *)PyCapsule_GetPointer(cap, WALKER);
    if (w == NULL)
        return NULL;
    if (!w->started || w->joined || w->pid != getpid()) /* (taken before; a forked child) */
        Py_RETURN_NONE;
    walker_join(w);
    if (!w->ok)
        Py_RETURN_NONE;
    files = PyList_New((Py_ssize_t)w->nf);
    dirs = PyList_New((Py_ssize_t)w->nd);
    if (files == NULL || dirs == NULL)
        goto fail;
    for (i = 0; i < w->nf; i++) {
        PyObject *st = stat_result(type, fields, w->files[i].st.v), *path;
        if (st == NULL)
            goto fail;
        path = PyUnicode_DecodeFSDefault(w->arena + w->files[i].path);
        if (path == NULL) {
            Py_DECREF(st);
            goto fail;
        }
        item = PyTuple_Pack(2, path, st);
        Py_DECREF(path);
        Py_DECREF(st);
        if (item == NULL)
            goto fail;
        PyList_SET_ITEM(files, (Py_ssize_t)i, item);
    }
    for (i = 0; i < w->nd; i++) {
        wdir *d = &w->dirs[i];
        PyObject *names = PyList_New((Py_ssize_t)d->count), *st;
        int64_t sig[4];
        if (names == NULL)
            goto fail;
        for (j = 0; j < d->count; j++) {
            PyObject *nm = PyUnicode_DecodeFSDefault(w->arena + w->names[d->first + j]);
            if (nm == NULL) {
                Py_DECREF(names);
                goto fail;
            }
            PyList_SET_ITEM(names, (Py_ssize_t)j, nm);
        }
        sig[0] = d->st.v[11]; /* mtime_ns, ctime_ns, ino, dev: a listing's first four */
        sig[1] = d->st.v[12];
        sig[2] = d->st.v[1];
        sig[3] = d->st.v[2];
        st = ints(sig, 4);
        if (st == NULL) {
            Py_DECREF(names);
            goto fail;
        }
        item = Py_BuildValue("(O&LNs#N)", PyUnicode_DecodeFSDefault, w->arena + d->path,
                             (long long)d->listed, st, d->count ? w->kinds + d->first : "",
                             (Py_ssize_t)d->count, names);
        if (item == NULL)
            goto fail;
        PyList_SET_ITEM(dirs, (Py_ssize_t)i, item);
    }
    return Py_BuildValue("(NN)", files, dirs);
fail:
    Py_XDECREF(files);
    Py_XDECREF(dirs);
    return NULL;
}

static PyMethodDef methods[] = {
    {"check", check, METH_VARARGS, check_doc},
    {"paths_at", paths_at, METH_VARARGS, paths_at_doc},
    {"check_start", check_start, METH_VARARGS, check_start_doc},
    {"check_take", check_take, METH_VARARGS, check_take_doc},
    {"walk_start", walk_start, METH_VARARGS, walk_start_doc},
    {"walk_take", walk_take, METH_VARARGS, walk_take_doc},
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
    if (PyModule_AddIntConstant(m, "API_VERSION", API_VERSION) != 0 ||
        PyModule_AddIntConstant(m, "WALK_VERSION", WALK_VERSION) != 0 ||
        PyModule_AddIntConstant(m, "EARLY_VERSION", EARLY_VERSION) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
