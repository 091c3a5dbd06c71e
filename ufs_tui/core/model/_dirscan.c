/* _dirscan: the system-call loops of a layer dir scan, in C.
 *
 * Optional: ufs_tui/core/model/dirscan.py holds the same three functions in Python (py_*) and uses them when
 * this module is not built; its docstrings are the contract, and tests/core/test_dirscan.py checks
 * that both give the same answers. It only reads: readdir, fstatat, listxattr, readlink; it opens
 * nothing but dirs (O_PATH for the *at calls).
 *
 * read_dirs(paths, types=True) -> [{name: d_type} or OSError, ...]
 *     For each real dir, its names (without . and ..) and their d_type (DT_UNKNOWN resolved with an
 *     fstatat that follows nothing, unless not ``types``; 0 if the name vanished meanwhile), or the
 *     OSError os.scandir raises.
 * marked_files(dir, listing, skip, markers) -> set of names
 *     Of the regular files in ``listing`` (d_type DT_REG) whose name is not in ``skip`` (a set, or
 *     None), those whose xattr names include one of ``markers`` (a tuple of bytes), or whose xattrs
 *     cannot be listed (gone, unreadable): the caller looks those up in full.
 * stat_files(dir, listing, skip, markers) -> {name: (mode, size, target) or None}
 *     For each name of ``listing`` not in ``skip``: what lstat (and readlink) say of it, or None for a
 *     name to look up in full (a dir, a 0/0 whiteout, a marked or unlistable regular file, a gone one).
 *
 * All make their system calls without the GIL, and once the work looks big (HELP_MIN), share it with
 * a second thread: the calls are mostly the kernel's time (cache misses on each dentry and inode).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/limits.h> /* XATTR_LIST_MAX */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_MARKERS 8
#define HELP_MIN 1024 /* entries (read, or to check) from which a second thread pays for itself */

static long cpus(void) { return sysconf(_SC_NPROCESSORS_ONLN); }

/* ---- read_dirs --------------------------------------------------------------------------------- */

typedef struct {
    char *buf; /* entries: one d_type byte, then the name and its NUL */
    size_t len, cap;
} Arena;

static int arena_put(Arena *a, unsigned char type, const char *name, size_t n)
{
    if (a->len + n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 65536;
        while (cap < a->len + n + 2)
            cap *= 2;
        char *b = PyMem_RawRealloc(a->buf, cap); /* (the Raw allocator needs no GIL) */
        if (b == NULL)
            return -1;
        a->buf = b;
        a->cap = cap;
    }
    a->buf[a->len++] = (char)type;
    memcpy(a->buf + a->len, name, n + 1);
    a->len += n + 1;
    return 0;
}

typedef struct {
    const char *path;
    int types; /* resolve DT_UNKNOWN */
    Arena names;
    Py_ssize_t count;
    int err; /* errno, or -1: out of memory */
} DirJob;

static void read_one(DirJob *job)
{
    int fd = open(job->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK); /* what opendir(3) does */
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        job->err = errno;
        if (fd >= 0)
            close(fd);
        return;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            job->err = errno; /* 0 at the end */
            break;
        }
        const char *n = e->d_name;
        if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))
            continue;
        unsigned char type = e->d_type;
        if (type == DT_UNKNOWN && job->types) { /* a file system without d_type */
            struct stat st;
            if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) == 0)
                type = IFTODT(st.st_mode);
        }
        if (arena_put(&job->names, type, n, strlen(n)) < 0) {
            job->err = -1;
            break;
        }
        job->count++;
    }
    closedir(d);
}

typedef struct {
    DirJob *jobs;
    Py_ssize_t n, next; /* next: the first job nobody took (atomic) */
} DirQueue;

static Py_ssize_t take(DirQueue *q) { return __atomic_fetch_add(&q->next, 1, __ATOMIC_RELAXED); }

static void *dir_helper(void *arg)
{
    DirQueue *q = arg;
    for (Py_ssize_t i = take(q); i < q->n; i = take(q))
        read_one(&q->jobs[i]);
    return NULL;
}

/* {name: d_type} from a job's names, or the OSError that os.scandir would raise. */
static PyObject *job_result(DirJob *job, PyObject *path)
{
    if (job->err == -1)
        return PyErr_NoMemory();
    if (job->err)
        return PyObject_CallFunction(PyExc_OSError, "isO", job->err, strerror(job->err), path); /* its subclass */
    PyObject *out = PyDict_New();
    const Arena *a = &job->names;
    for (size_t i = 0; out != NULL && i < a->len;) {
        long type = (unsigned char)a->buf[i++];
        const char *n = a->buf + i;
        size_t len = strlen(n);
        i += len + 1;
        PyObject *key = PyUnicode_DecodeFSDefaultAndSize(n, (Py_ssize_t)len); /* as os.fsdecode */
        PyObject *value = key ? PyLong_FromLong(type) : NULL;
        if (value == NULL || PyDict_SetItem(out, key, value) < 0)
            Py_CLEAR(out);
        Py_XDECREF(key);
        Py_XDECREF(value);
    }
    return out;
}

static PyObject *read_dirs(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *arg;
    int types = 1;
    if (!PyArg_ParseTuple(args, "O|p:read_dirs", &arg, &types))
        return NULL;
    PyObject *paths = PySequence_Fast(arg, "read_dirs takes a sequence of paths");
    if (paths == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(paths), ok = 0;
    PyObject *out = NULL;
    PyObject **encoded = PyMem_Calloc((size_t)(n ? n : 1), sizeof *encoded);
    DirJob *jobs = PyMem_Calloc((size_t)(n ? n : 1), sizeof *jobs);
    if (encoded == NULL || jobs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; ok < n; ok++) {
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(paths, ok), &encoded[ok]))
            goto done;
        jobs[ok].path = PyBytes_AS_STRING(encoded[ok]);
        jobs[ok].types = types;
    }

    Py_BEGIN_ALLOW_THREADS
    /* In order; once the dirs read so far look big, a helper thread takes every other one that is left. */
    DirQueue q = {jobs, n, 0};
    Py_ssize_t seen = 0;
    pthread_t helper;
    int helped = 0;
    for (Py_ssize_t i = take(&q); i < n; i = take(&q)) {
        read_one(&jobs[i]);
        seen += jobs[i].count;
        if (!helped && seen >= HELP_MIN && q.next < n && cpus() > 1)
            helped = pthread_create(&helper, NULL, dir_helper, &q) == 0;
    }
    if (helped)
        pthread_join(helper, NULL);
    Py_END_ALLOW_THREADS

    out = PyList_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *got = job_result(&jobs[i], PySequence_Fast_GET_ITEM(paths, i));
        if (got == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, got);
    }

done:
    for (Py_ssize_t i = 0; i < ok; i++) {
        Py_DECREF(encoded[i]);
        PyMem_RawFree(jobs[i].names.buf);
    }
    PyMem_Free(encoded);
    PyMem_Free(jobs);
    Py_DECREF(paths);
    return out;
}

/* ---- marked_files and stat_files: a system call or three per name ----------------------------- */

typedef struct {
    int lookup;   /* 1: the caller looks the name up in full (a marker, a dir, a whiteout, an error) */
    mode_t mode;  /* stat_files: from lstat */
    off_t size;
    char *target; /* a symlink's target (PyMem_Raw), or NULL */
    ssize_t target_len;
} Facts;

typedef struct {
    const char *dir; /* ends with '/' */
    size_t dir_len;
    int dir_fd; /* an O_PATH fd of dir for the *at calls, or -1: whole paths then */
    int want_stat;
    const char *markers[MAX_MARKERS];
    size_t marker_len[MAX_MARKERS];
    Py_ssize_t nmarkers;
    Py_ssize_t n;
    PyObject **keys;    /* the str names, held */
    PyObject **held;    /* what keeps each encoded name alive */
    const char **names; /* the encoded names */
    Facts *facts;       /* out, one per name */
} Batch;

static int has_marker(const Batch *b, const char *list, ssize_t size)
{
    for (ssize_t i = 0; i < size;) { /* NUL-separated names */
        size_t n = strnlen(list + i, (size_t)(size - i));
        for (Py_ssize_t m = 0; m < b->nmarkers; m++)
            if (n == b->marker_len[m] && memcmp(list + i, b->markers[m], n) == 0)
                return 1;
        i += (ssize_t)n + 1;
    }
    return 0;
}

/* listxattrat(2) (Linux 6.13): no walk of the dir's path per name. It has the same number on every
 * architecture but alpha and mips; where it is missing (ENOSYS) or filtered (seccomp: EPERM), the
 * first such answer turns it off for this process and llistxattr of the whole path does the job. */
#if defined(__NR_listxattrat)
#define NR_LISTXATTRAT __NR_listxattrat
#elif defined(__linux__) && !defined(__alpha__) && !defined(__mips__)
#define NR_LISTXATTRAT 465
#endif
#ifdef NR_LISTXATTRAT
static int listxattrat_works = 1; /* (a benign race: each thread may find it out once) */
#endif

/* ``path`` holds the dir; put ``name`` after it. NULL if too long. */
static const char *full_path(const Batch *b, char *path, const char *name)
{
    size_t n = strlen(name);
    if (b->dir_len + n > PATH_MAX) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    memcpy(path + b->dir_len, name, n + 1);
    return path;
}

static ssize_t list_xattrs(const Batch *b, char *path, const char *name, char *list)
{
#ifdef NR_LISTXATTRAT
    if (b->dir_fd >= 0 && __atomic_load_n(&listxattrat_works, __ATOMIC_RELAXED)) {
        ssize_t size = syscall(NR_LISTXATTRAT, b->dir_fd, name, AT_SYMLINK_NOFOLLOW, list, (size_t)XATTR_LIST_MAX);
        if (size >= 0 || (errno != ENOSYS && errno != EPERM))
            return size;
        __atomic_store_n(&listxattrat_works, 0, __ATOMIC_RELAXED);
    }
#endif
    const char *p = full_path(b, path, name);
    return p == NULL ? -1 : llistxattr(p, list, XATTR_LIST_MAX);
}

static void check_one(const Batch *b, Facts *f, const char *name, char *path, char *list)
{
    if (b->want_stat) {
        struct stat st;
        const char *p = b->dir_fd >= 0 ? name : full_path(b, path, name);
        if (p == NULL || fstatat(b->dir_fd >= 0 ? b->dir_fd : AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return; /* gone: the lookup says so */
        f->mode = st.st_mode;
        f->size = st.st_size;
        if (S_ISDIR(st.st_mode) || (S_ISCHR(st.st_mode) && st.st_rdev == 0))
            return; /* a dir, or a whiteout */
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = b->dir_fd >= 0 ? readlinkat(b->dir_fd, name, list, XATTR_LIST_MAX)
                                       : ((p = full_path(b, path, name)) ? readlink(p, list, XATTR_LIST_MAX) : -1);
            if (n >= 0 && (f->target = PyMem_RawMalloc((size_t)n + 1)) != NULL) {
                memcpy(f->target, list, (size_t)n);
                f->target_len = n;
            }
            f->lookup = 0; /* (an unreadable target: None, as os.readlink failing) */
            return;
        }
        if (!S_ISREG(st.st_mode)) {
            f->lookup = 0;
            return;
        }
    }
    ssize_t size = list_xattrs(b, path, name, list);
    f->lookup = size < 0 || (size > 0 && has_marker(b, list, size));
}

typedef struct {
    const Batch *b;
    Py_ssize_t lo, hi;
} Range;

static void *check_range(void *arg)
{
    const Range *r = arg;
    char *path = PyMem_RawMalloc(PATH_MAX + 1);
    char *list = PyMem_RawMalloc(XATTR_LIST_MAX);
    if (path != NULL && list != NULL) { /* (else every name is looked up in full) */
        memcpy(path, r->b->dir, r->b->dir_len + 1);
        for (Py_ssize_t i = r->lo; i < r->hi; i++)
            check_one(r->b, &r->b->facts[i], r->b->names[i], path, list);
    }
    PyMem_RawFree(path);
    PyMem_RawFree(list);
    return NULL;
}

/* Check every name, without the GIL; past HELP_MIN names a second thread takes half. */
static void run_batch(Batch *b)
{
    Py_BEGIN_ALLOW_THREADS
    b->dir_fd = open(b->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    Range first = {b, 0, b->n}, second = {b, b->n / 2, b->n};
    pthread_t helper;
    int helped = 0;
    if (b->n >= HELP_MIN && cpus() > 1) {
        helped = pthread_create(&helper, NULL, check_range, &second) == 0;
        if (helped)
            first.hi = b->n / 2;
    }
    check_range(&first);
    if (helped)
        pthread_join(helper, NULL);
    if (b->dir_fd >= 0)
        close(b->dir_fd);
    Py_END_ALLOW_THREADS
}

static void free_batch(Batch *b)
{
    for (Py_ssize_t i = 0; i < b->n; i++) {
        Py_DECREF(b->keys[i]);
        Py_DECREF(b->held[i]);
        if (b->facts != NULL)
            PyMem_RawFree(b->facts[i].target);
    }
    PyMem_Free(b->keys);
    PyMem_Free(b->held);
    PyMem_Free((void *)b->names);
    PyMem_Free(b->facts);
    PyMem_Free((void *)b->dir);
}

/* Parse (dir, listing, skip, markers) and take the names of ``listing`` not in ``skip`` (only its
 * regular files unless ``want_stat``). 0, or -1 with an exception set (free_batch either way). */
static int make_batch(Batch *b, PyObject *args, const char *format, int want_stat)
{
    PyObject *dir, *listing, *skip, *markers;
    memset(b, 0, sizeof *b);
    b->want_stat = want_stat;
    if (!PyArg_ParseTuple(args, format, &dir, &PyDict_Type, &listing, &skip, &PyTuple_Type, &markers))
        return -1;
    if (skip == Py_None)
        skip = NULL;
    else if (!PyAnySet_Check(skip)) {
        PyErr_SetString(PyExc_TypeError, "skip must be a set or None");
        return -1;
    }
    b->nmarkers = PyTuple_GET_SIZE(markers);
    if (b->nmarkers > MAX_MARKERS) {
        PyErr_Format(PyExc_ValueError, "at most %d markers", MAX_MARKERS);
        return -1;
    }
    for (Py_ssize_t m = 0; m < b->nmarkers; m++) {
        PyObject *mk = PyTuple_GET_ITEM(markers, m); /* (the tuple, held by args, keeps them alive) */
        if (!PyBytes_Check(mk)) {
            PyErr_SetString(PyExc_TypeError, "markers must be bytes");
            return -1;
        }
        b->markers[m] = PyBytes_AS_STRING(mk);
        b->marker_len[m] = (size_t)PyBytes_GET_SIZE(mk);
    }

    PyObject *dir_bytes = NULL;
    if (!PyUnicode_FSConverter(dir, &dir_bytes))
        return -1;
    size_t dir_len = (size_t)PyBytes_GET_SIZE(dir_bytes);
    char *dir_buf = PyMem_Malloc(dir_len + 2);
    if (dir_buf != NULL) {
        memcpy(dir_buf, PyBytes_AS_STRING(dir_bytes), dir_len);
        if (dir_len == 0 || dir_buf[dir_len - 1] != '/')
            dir_buf[dir_len++] = '/';
        dir_buf[dir_len] = '\0';
    }
    Py_DECREF(dir_bytes);
    b->dir = dir_buf;
    b->dir_len = dir_len;
    size_t cap = (size_t)PyDict_GET_SIZE(listing) + 1;
    b->keys = PyMem_Malloc(cap * sizeof *b->keys);
    b->held = PyMem_Malloc(cap * sizeof *b->held);
    b->names = PyMem_Malloc(cap * sizeof *b->names);
    b->facts = PyMem_Malloc(cap * sizeof *b->facts);
    if (dir_buf == NULL || b->keys == NULL || b->held == NULL || b->names == NULL || b->facts == NULL) {
        PyErr_NoMemory();
        return -1;
    }

    /* Each name held: another thread may change the dict while the GIL is out. */
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(listing, &pos, &key, &value)) {
        if (!PyUnicode_Check(key))
            continue;
        if (!want_stat) {
            int overflow;
            if (!PyLong_Check(value) || PyLong_AsLongAndOverflow(value, &overflow) != DT_REG)
                continue;
        }
        if (skip != NULL) {
            int in = PySet_Contains(skip, key);
            if (in < 0)
                return -1;
            if (in)
                continue;
        }
        PyObject *enc;
        const char *name;
        if (PyUnicode_IS_ASCII(key)) { /* the same bytes in any file system encoding */
            Py_INCREF(key);
            enc = key;
            name = (const char *)PyUnicode_DATA(key);
        } else {
            enc = PyUnicode_EncodeFSDefault(key); /* as os.fsencode: surrogates give back the raw bytes */
            if (enc == NULL)
                return -1;
            name = PyBytes_AS_STRING(enc);
        }
        Py_INCREF(key);
        b->keys[b->n] = key;
        b->held[b->n] = enc;
        b->names[b->n] = name;
        b->facts[b->n] = (Facts){1, 0, 0, NULL, 0}; /* a name no thread got to is looked up in full */
        b->n++;
    }
    return 0;
}

static PyObject *marked_files(PyObject *self, PyObject *args)
{
    (void)self;
    Batch b;
    PyObject *out = NULL;
    if (make_batch(&b, args, "OO!OO!:marked_files", 0) == 0) {
        run_batch(&b);
        out = PySet_New(NULL);
        for (Py_ssize_t i = 0; out != NULL && i < b.n; i++)
            if (b.facts[i].lookup && PySet_Add(out, b.keys[i]) < 0)
                Py_CLEAR(out);
    }
    free_batch(&b);
    return out;
}

static PyObject *stat_files(PyObject *self, PyObject *args)
{
    (void)self;
    Batch b;
    PyObject *out = NULL;
    if (make_batch(&b, args, "OO!OO!:stat_files", 1) == 0) {
        run_batch(&b);
        out = PyDict_New();
        for (Py_ssize_t i = 0; out != NULL && i < b.n; i++) {
            const Facts *f = &b.facts[i];
            PyObject *value;
            if (f->lookup)
                value = Py_NewRef(Py_None);
            else if (f->target != NULL)
                value = Py_BuildValue("(kLN)", (unsigned long)f->mode, (long long)f->size,
                                      PyUnicode_DecodeFSDefaultAndSize(f->target, f->target_len));
            else
                value = Py_BuildValue("(kLO)", (unsigned long)f->mode, (long long)f->size, Py_None);
            if (value == NULL || PyDict_SetItem(out, b.keys[i], value) < 0)
                Py_CLEAR(out);
            Py_XDECREF(value);
        }
    }
    free_batch(&b);
    return out;
}

/* For tests: turn listxattrat off (or on again); returns whether it was on. */
static PyObject *use_listxattrat(PyObject *self, PyObject *arg)
{
    (void)self;
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
#ifdef NR_LISTXATTRAT
    return PyBool_FromLong(__atomic_exchange_n(&listxattrat_works, on, __ATOMIC_RELAXED));
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"read_dirs", read_dirs, METH_VARARGS, "read_dirs(paths, types=True) -> [{name: d_type} or OSError, ...]"},
    {"marked_files", marked_files, METH_VARARGS, "marked_files(dir, listing, skip, markers) -> set of names"},
    {"stat_files", stat_files, METH_VARARGS, "stat_files(dir, listing, skip, markers) -> {name: (mode, size, target) or None}"},
    {"use_listxattrat", use_listxattrat, METH_O, "use_listxattrat(on) -> whether it was on (for tests)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_dirscan", "A layer dir scan's system-call loops (see dirscan.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__dirscan(void) { return PyModule_Create(&module); }
