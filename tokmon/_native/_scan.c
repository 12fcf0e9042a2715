/*
 * tokmon._native._scan: the per-line work of tokmon.core.parser.scan_lines in C, on yyjson.
 *
 * The rule that keeps results exact: C handles a line only when it is sure the Python path
 * gives the same result; on any doubt the line goes back to Python (the ``fallback``
 * callable: msgspec decode of that line, then parse_line), in order with the other lines.
 * C handles a line when it is shaped "{...}" (a CR before the newline allowed), yyjson
 * (strict RFC 8259, UTF-8 checked in every string, the parser orjson uses) accepts it, it
 * nests at most MAX_DEPTH deep, every field tokmon reads is present at most once, with an
 * unescaped key and exactly the type the msgspec Struct of parser._line_decoder expects
 * (strings or null; counts non-negative integer literals up to max_tokens; costUSD null),
 * and it is either not a usage or title line (nothing to do: it was only validated), or a
 * usage line with a timestamp of the form YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z. A title line
 * (a few per session) is read here like a usage line (the same checks of its fields) and
 * its session id and title handed to Python's ``title`` hook, which applies
 * parser._title's rules (control characters, whitespace, length). Most lines never reach
 * yyjson: a walk of their grammar that accepts only what yyjson accepts (the validate-only
 * pre-pass below) skips the lines that carry nothing, and the same walk noting fields
 * decides most usage lines (pre_usage); on any doubt yyjson reads the line as described
 * here. Before any of it, a line without the bytes "usage" (quoted), title", \u006 or \u007
 * is skipped unread, valid or not (the candidate filter, below, with the proof that such a
 * line can count nothing; parser._candidate skips the same lines on the Python paths).
 *
 * Pass 1 (the GIL released) parses every line of the range into small C records; pass 2
 * (with the GIL) builds the rows in line order: the same dedup key, "the first line with the
 * largest output wins", poison timestamps counted as malformed, session ids, cwds and model
 * names mapped to their shown text through the ``strings`` dict.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h> /* LLONG_MAX */
#include <math.h> /* signbit, fabs */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <fcntl.h> /* _O_RDONLY, _O_BINARY, _O_NOINHERIT */
#include <io.h>    /* _read, _wopen, _close */
#else
#include <fcntl.h>  /* open */
#include <unistd.h> /* read, close */
#endif
#ifdef __GLIBC__
#include <malloc.h> /* mallopt (PyInit__scan) */
#endif

#include "vendor/yyjson/yyjson.h"

#define MAX_DEPTH 512 /* orjson rejects past 1024: deeper lines go to Python */
#define ROW_OUTPUT 5  /* tokmon.core.model.ROW_OUTPUT (checked by parser.py) */

/* K_TITLE: a title line C read (its session id in ``sid``, its title in ``cwd``, ``inp`` 1 for
 * "ai-title", 0 for "custom-title"), for pass 2's ``title`` hook */
enum { K_SKIP = 0, K_PY = 1, K_USAGE = 2, K_TITLE = 3 };

/* a string copied into the arena: offset and length (length 0: absent, null or "") */
typedef struct {
    size_t pos;
    size_t len;
} slice;

typedef struct {
    int kind;
    Py_ssize_t off; /* line start (index into the buffer) */
    Py_ssize_t end; /* index of its newline (or of the range's end) */
    double ts;
    int64_t inp, out, cc, c1h, cread;
    slice sid, cwd, model, key; /* key: "id:requestId" when both are non-empty, else len 0 */
} rec;

typedef struct {
    rec *recs;
    size_t n, cap;
    char *arena;
    size_t used, size;
    char *scratch; /* a copy of the line being parsed (yyjson parses in place) */
    size_t scratch_size;
    int nomem;
    int prepass;  /* prepass_enabled, read with the GIL held */
    int filter;   /* filter_enabled, the same */
    size_t filtered; /* lines the candidate filter skipped */
    size_t fast;  /* lines the pre-pass skipped */
    size_t fields; /* lines pre_usage decided */
} pass1;

static int grow_recs(pass1 *p) {
    size_t cap = p->cap ? p->cap * 2 : 256;
    rec *r = (rec *)realloc(p->recs, cap * sizeof(rec));
    if (!r) return 0;
    p->recs = r;
    p->cap = cap;
    return 1;
}

static int arena_put(pass1 *p, const char *s, size_t n, slice *out) {
    if (p->used + n > p->size) {
        size_t size = p->size ? p->size : 4096;
        char *a;
        while (p->used + n > size) size *= 2;
        a = (char *)realloc(p->arena, size);
        if (!a) return 0;
        p->arena = a;
        p->size = size;
    }
    memcpy(p->arena + p->used, s, n);
    out->pos = p->used;
    out->len = n;
    p->used += n;
    return 1;
}

/* --- the fields the msgspec Struct reads ------------------------------------------------- */

/* Whether key ``k`` (unescaped by yyjson in ``scratch``) is spelled ``name`` with no escape in
 * the raw line: yyjson unescapes in place, so an escape leaves a backslash among the first
 * ``len`` raw bytes of the key. */
static int key_is(yyjson_val *k, const char *name, size_t n, const char *scratch,
                  const char *raw, size_t line_len, int *escaped) {
    const char *s = unsafe_yyjson_get_str(k);
    size_t len = unsafe_yyjson_get_len(k);
    size_t pos;
    if (len != n || memcmp(s, name, n) != 0) return 0;
    if (s < scratch) {
        *escaped = 1;
        return 1;
    }
    pos = (size_t)(s - scratch);
    if (pos + n > line_len || memchr(raw + pos, '\\', n) != NULL) *escaped = 1;
    return 1;
}

/* str | None */
static int is_text(yyjson_val *v) { return yyjson_is_str(v) || yyjson_is_null(v); }

/* Annotated[int, Meta(ge=0, le=MAX_TOKENS)]: a non-negative integer literal */
static int count_of(yyjson_val *v, uint64_t max, int64_t *out) {
    uint64_t u;
    if (!yyjson_is_uint(v)) return 0;
    u = unsafe_yyjson_get_uint(v);
    if (u > max) return 0;
    *out = (int64_t)u;
    return 1;
}

static int depth_ok(yyjson_doc *doc) {
    yyjson_val *v = yyjson_doc_get_root(doc);
    yyjson_val *end = v + yyjson_doc_get_val_count(doc);
    yyjson_val *stack[MAX_DEPTH + 1];
    int sp = 0;
    for (; v < end; v++) {
        while (sp > 0 && v >= stack[sp - 1]) sp--;
        if (yyjson_is_ctn(v)) {
            if (sp >= MAX_DEPTH) return 0;
            stack[sp++] = unsafe_yyjson_get_next(v);
        }
    }
    return 1;
}

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil) */
static int64_t days_from_civil(int64_t y, int m, int d) {
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out) {
    int v = 0, i;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z to epoch seconds, as datetime.fromisoformat(s)
 * .timestamp() gives it (whole microseconds / 10**6, correctly rounded); 0: another form
 * or an invalid date (Python decides) */
static int canonical_stamp(const char *s, size_t n, double *ts) {
    int y, mo, d, h, mi, se, frac = 0, dim;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t us;
    if (n != 20 && n != 24 && n != 27) return 0;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[n - 1] != 'Z')
        return 0;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return 0;
    if (n > 20) {
        if (s[19] != '.' || !digits(s + 20, (int)n - 21, &frac)) return 0;
        if (n == 24) frac *= 1000;
    }
    if (y < 1 || mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 59) return 0;
    dim = mdays[mo - 1];
    if (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) dim = 29;
    if (d < 1 || d > dim) return 0;
    us = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * (int64_t)1000000 + frac;
    *ts = (double)us / 1e6;
    return 1;
}

/* --- the validate-only pre-pass ------------------------------------------------------------
 *
 * Most lines (user messages, tool results) cannot change a total: for them only JSON
 * validity matters (the malformed count is exact) and whether they are usage or title lines.
 * prepass() checks such a line in one pass, without a DOM or a copy, and says "skip" only
 * when yyjson and the Python path would both see valid JSON of which nothing is read: a
 * strict RFC 8259 object (UTF-8 checked in every string), at most PRE_DEPTH containers
 * deep, every top-level key written without escapes or non-ASCII bytes, and at most one
 * "type" key whose value is a plain ASCII string (no escapes) other than "assistant",
 * "custom-title" and "ai-title". Everything else, however valid, goes on to yyjson as
 * before (a \u escape of a surrogate, a number with more than 18 integer digits, 40
 * fraction digits or a 3-digit exponent, deeper nesting, any doubt).
 *
 * The grammar is walked token by token (pre_walk). A string's body, most of the bytes, is
 * checked 64 bytes at a time, simdjson's way, without leaving the block for an escape or a
 * non-ASCII character (pre_string): vector compares give bitmasks of the block's quotes,
 * backslashes, control and non-ASCII bytes; the escaped bytes are those after an odd run
 * of backslashes (a run carried from block to block); the string ends at the first
 * unescaped quote and every test applies only up to it. A control byte fails; each escaped
 * byte must be one of " \ / b f n r t, or u with four hex digits that are not a surrogate
 * (read in place); a block with non-ASCII bytes (or after one ending in some) is checked as
 * UTF-8 as a whole: overlong forms, surrogates, past U+10FFFF, a sequence cut or too long
 * all fail, a sequence may span two blocks, and the closing quote after a cut sequence
 * fails it. A string shorter than 16 bytes with nothing special before its quote takes one
 * compare. Three builds of the walk (the grammar is one function, inlined into each):
 *  - AVX2 (gcc and clang on x86, chosen at import when the CPU has it): masks from two
 *    32-byte loads, escaped bytes checked by a nibble lookup, UTF-8 by Keiser and Lemire's
 *    three nibble lookups (simdjson's lookup4) over the block and the one before it;
 *  - SSE2 (x86-64, MSVC): masks from four 16-byte loads, escaped bytes by a table, UTF-8 by
 *    a walk over the block's non-ASCII sequences only (pre_seq at each lead byte);
 *  - portable (no SSE2): the previous scan, 8 bytes at a time (SWAR) to the next special
 *    byte, then one escape or one run of non-ASCII characters at a time.
 * All three accept exactly the same strings; the tests run every build the machine has
 * (_set_prepass_simd) on the same lines.
 * In the measured corpus (500 MB, 2026-11-30) the pre-pass went from ~2 GB/s to ~4.5 GB/s
 * (AVX2; SSE2 ~2.5 GB/s): escapes are one in ~40 bytes of tool output and most 64-byte
 * blocks of text hold some non-ASCII byte, so leaving the vector loop for each was the
 * cost. */

#define PRE_DEPTH 128 /* far below MAX_DEPTH and orjson's 1024 */

static int prepass_enabled = 1;          /* tests switch it off to compare with yyjson alone */
static unsigned long long prepass_lines; /* lines it skipped (added with the GIL held) */
static unsigned long long usage_lines;   /* lines pre_usage decided (same) */

#if defined(_MSC_VER) && !defined(__clang__)
#define PRE_INLINE static __forceinline
#elif defined(__GNUC__) || defined(__clang__)
#define PRE_INLINE static inline __attribute__((always_inline))
#else
#define PRE_INLINE static
#endif

#if !defined(TOKMON_NO_SSE2) && \
    (defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
#include <emmintrin.h>
#define PRE_SSE2 1
#if !defined(TOKMON_NO_AVX2) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#include <immintrin.h>
#define PRE_AVX2 1
#define PRE_TARGET_AVX2 __attribute__((target("avx2")))
#endif
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static int pre_ctz(uint64_t x) {
    unsigned long i;
#if defined(_M_X64) || defined(_M_ARM64)
    _BitScanForward64(&i, x);
    return (int)i;
#else
    if ((uint32_t)x) {
        _BitScanForward(&i, (uint32_t)x);
        return (int)i;
    }
    _BitScanForward(&i, (uint32_t)(x >> 32));
    return (int)i + 32;
#endif
}
#else
#define pre_ctz(x) __builtin_ctzll(x)
#endif

/* The bitmasks of a 64-byte block (bit i: byte i). */
typedef struct {
    uint64_t quote, bslash, ctl, high; /* '"', '\\', below 0x20, 0x80 and above */
} pre_blk;

static const unsigned char pre_esc[256] = {
    ['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1,
    ['u'] = 2,
}; /* an escaped byte: 1 one of " \ / b f n r t, 2 u, 0 invalid */

static int pre_hex(unsigned c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* The four hex digits after the u at ``s``: 1 when they are there and not a surrogate
 * (pairs too are left to yyjson). */
static int pre_uescape(const unsigned char *s, const unsigned char *e) {
    int i, v = 0;
    if (e - s < 5) return 0;
    for (i = 1; i < 5; i++) {
        int h = pre_hex(s[i]);
        if (h < 0) return 0;
        v = v * 16 + h;
    }
    return v < 0xD800 || v > 0xDFFF;
}

#ifdef PRE_SSE2
/* The escaped bytes ``x`` of block ``p`` (at ``s`` in the line): 1 when all are valid. */
static int pre_escapes_scalar(const unsigned char *p, const unsigned char *s,
                              const unsigned char *e, uint64_t x) {
    do {
        int i = pre_ctz(x);
        int k = pre_esc[p[i]];
        if (!k || (k == 2 && !pre_uescape(s + i, e))) return 0;
        x &= x - 1;
    } while (x);
    return 1;
}
#endif

/* The length of the valid UTF-8 sequence (2 to 4 bytes) at ``s``, or 0 (overlong forms,
 * surrogates, past U+10FFFF, cut). */
static int pre_seq(const unsigned char *s, const unsigned char *e) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return e - s >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        return e - s >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        return e - s >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 &&
                       (s[3] & 0xC0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

#ifdef PRE_SSE2
/* The UTF-8 check of the SSE2 build: each sequence of the block at ``s``
 * whose non-ASCII bytes are ``x``, read in place (it may end in the next block: ``*skip``,
 * its bytes there). 0: invalid. */
static int pre_utf8_walk(const unsigned char *p, const unsigned char *pp,
                         const unsigned char *s, const unsigned char *e, uint64_t x,
                         uint64_t upto, unsigned *skip) {
    (void)p;
    (void)pp;
    (void)upto;
    if (*skip) {
        x &= ~(((uint64_t)1 << *skip) - 1);
        *skip = 0;
    }
    while (x) {
        int i = pre_ctz(x), n = pre_seq(s + i, e);
        if (!n) return 0;
        if (i + n >= 64) {
            *skip = (unsigned)(i + n - 64);
            return 1;
        }
        x &= ~((((uint64_t)1 << n) - 1) << i);
    }
    return 1;
}
#endif

/* -- the portable build (no SSE2): the string scan of the seventh session -- */

/* The first byte at or after ``s`` that is '"', '\\', a control byte or non-ASCII. */
static const unsigned char *pre_plain(const unsigned char *s, const unsigned char *e) {
    const uint64_t lo = 0x0101010101010101ULL, hi = 0x8080808080808080ULL;
    while (e - s >= 8) {
        uint64_t x, xq, xb;
        memcpy(&x, s, 8);
        xq = x ^ (lo * '"');
        xb = x ^ (lo * '\\');
        /* no false negatives (a hit is then found below, byte by byte) */
        if ((((xq - lo) & ~xq) | ((xb - lo) & ~xb) | ((x - lo * 0x20) & ~x) | x) & hi) break;
        s += 8;
    }
    while (s < e && *s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\') s++;
    return s;
}

/* A string's body from just after its opening quote: the byte after its closing quote, or
 * NULL (invalid, or a \u escape of a surrogate). ``*plain``: no escape, all ASCII. */
static const unsigned char *pre_string_swar(const unsigned char *s, const unsigned char *e,
                                            int *plain) {
    *plain = 1;
    for (;;) {
        unsigned c;
        s = pre_plain(s, e);
        if (s >= e) return NULL;
        c = *s;
        if (c == '"') return s + 1;
        if (c == '\\') {
            *plain = 0;
            if (e - s < 2) return NULL;
            switch (pre_esc[s[1]]) {
            case 1:
                s += 2;
                continue;
            case 2:
                if (!pre_uescape(s + 1, e)) return NULL;
                s += 6;
                continue;
            default:
                return NULL;
            }
        }
        if (c < 0x80) return NULL; /* a raw control byte */
        *plain = 0;
        do { /* a run of non-ASCII characters (e.g. CJK text) in one go */
            int n = pre_seq(s, e);
            if (!n) return NULL;
            s += n;
        } while (s < e && *s >= 0x80);
    }
}

/* -- the SSE2 build -- */

#ifdef PRE_SSE2
#define PRE_MM(v) ((uint64_t)(unsigned)_mm_movemask_epi8(v))

static void pre_masks_sse2(const unsigned char *p, pre_blk *m) {
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'), c = _mm_set1_epi8(0x20);
    int i;
    m->quote = m->bslash = m->ctl = m->high = 0;
    for (i = 0; i < 4; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
        uint64_t hi = PRE_MM(x);
        /* signed compare: bytes >= 0x80 are negative, so below 0x20 too */
        m->quote |= PRE_MM(_mm_cmpeq_epi8(x, q)) << (16 * i);
        m->bslash |= PRE_MM(_mm_cmpeq_epi8(x, b)) << (16 * i);
        m->ctl |= (PRE_MM(_mm_cmplt_epi8(x, c)) & ~hi) << (16 * i);
        m->high |= hi << (16 * i);
    }
}

#endif

/* -- the AVX2 build -- */

#ifdef PRE_AVX2
#define PRE_MM256(v) ((uint64_t)(uint32_t)_mm256_movemask_epi8(v))

PRE_TARGET_AVX2 static inline void pre_masks_avx2(const unsigned char *p, pre_blk *m) {
    const __m256i q = _mm256_set1_epi8('"'), b = _mm256_set1_epi8('\\');
    const __m256i c = _mm256_set1_epi8(0x20);
    __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i x1 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    uint64_t h0 = PRE_MM256(x0), h1 = PRE_MM256(x1);
    m->quote = PRE_MM256(_mm256_cmpeq_epi8(x0, q)) | PRE_MM256(_mm256_cmpeq_epi8(x1, q)) << 32;
    m->bslash = PRE_MM256(_mm256_cmpeq_epi8(x0, b)) | PRE_MM256(_mm256_cmpeq_epi8(x1, b)) << 32;
    m->ctl = ((PRE_MM256(_mm256_cmpgt_epi8(c, x0)) & ~h0) |
              (PRE_MM256(_mm256_cmpgt_epi8(c, x1)) & ~h1) << 32);
    m->high = h0 | h1 << 32;
}

/* valid escaped bytes by nibbles: bit 0 high nibble 2 ("/), 1: 5 (\), 2: 6 (bfn), 3: 7 (rtu) */
PRE_TARGET_AVX2 static inline uint64_t pre_esc_bad_avx2(__m256i x) {
    const __m256i lo = _mm256_setr_epi8(0, 0, 13, 0, 8, 8, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1, 0, 0,
                                        13, 0, 8, 8, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1);
    const __m256i hi = _mm256_setr_epi8(0, 0, 1, 0, 0, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                                        0, 0, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i f = _mm256_set1_epi8(0x0F);
    __m256i l = _mm256_shuffle_epi8(lo, _mm256_and_si256(x, f));
    __m256i h = _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi16(x, 4), f));
    return PRE_MM256(_mm256_cmpeq_epi8(_mm256_and_si256(l, h), _mm256_setzero_si256()));
}

PRE_TARGET_AVX2 static int pre_escapes_avx2(const unsigned char *p, const unsigned char *s,
                                            const unsigned char *e, uint64_t x) {
    __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i x1 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    const __m256i u = _mm256_set1_epi8('u');
    uint64_t us;
    if (x & (pre_esc_bad_avx2(x0) | pre_esc_bad_avx2(x1) << 32)) return 0;
    us = x & (PRE_MM256(_mm256_cmpeq_epi8(x0, u)) | PRE_MM256(_mm256_cmpeq_epi8(x1, u)) << 32);
    while (us) {
        if (!pre_uescape(s + pre_ctz(us), e)) return 0;
        us &= us - 1;
    }
    return 1;
}

/* bytes [i - n, i + 32 - n) of prev:x */
#define PRE_PREV(x, prev, n) \
    _mm256_alignr_epi8((x), _mm256_permute2x128_si256((prev), (x), 0x21), 16 - (n))

enum { U_SHORT = 1, U_LONG = 2, U_OVER3 = 4, U_LARGE = 8, U_SURR = 16, U_OVER2 = 32,
       U_1000 = 64, U_TWO = 128, U_CARRY = U_SHORT | U_LONG | U_TWO };
/* by the first byte's high nibble, its low nibble, the second byte's high nibble */
static const unsigned char pre_u8_t1[16] = {
    U_LONG, U_LONG, U_LONG, U_LONG, U_LONG, U_LONG, U_LONG, U_LONG, U_TWO, U_TWO, U_TWO, U_TWO,
    U_SHORT | U_OVER2, U_SHORT, U_SHORT | U_OVER3 | U_SURR, U_SHORT | U_LARGE | U_1000};
static const unsigned char pre_u8_t2[16] = {
    U_CARRY | U_OVER3 | U_OVER2 | U_1000, U_CARRY | U_OVER2, U_CARRY, U_CARRY,
    U_CARRY | U_LARGE, U_CARRY | U_LARGE | U_1000, U_CARRY | U_LARGE | U_1000,
    U_CARRY | U_LARGE | U_1000, U_CARRY | U_LARGE | U_1000, U_CARRY | U_LARGE | U_1000,
    U_CARRY | U_LARGE | U_1000, U_CARRY | U_LARGE | U_1000, U_CARRY | U_LARGE | U_1000,
    U_CARRY | U_LARGE | U_1000 | U_SURR, U_CARRY | U_LARGE | U_1000,
    U_CARRY | U_LARGE | U_1000};
static const unsigned char pre_u8_t3[16] = {
    U_SHORT, U_SHORT, U_SHORT, U_SHORT, U_SHORT, U_SHORT, U_SHORT, U_SHORT,
    U_LONG | U_OVER2 | U_TWO | U_OVER3 | U_1000, U_LONG | U_OVER2 | U_TWO | U_OVER3 | U_LARGE,
    U_LONG | U_OVER2 | U_TWO | U_SURR | U_LARGE, U_LONG | U_OVER2 | U_TWO | U_SURR | U_LARGE,
    U_SHORT, U_SHORT, U_SHORT, U_SHORT};
#define PRE_TABLE(t) _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(t)))

/* Keiser and Lemire's UTF-8 check ("Validating UTF-8 in less than one instruction per
 * byte", 2021; simdjson's lookup4): non-zero bytes at the errors of x after prev. */
PRE_TARGET_AVX2 static inline __m256i pre_u8_avx2(__m256i x, __m256i prev) {
    const __m256i t1 = PRE_TABLE(pre_u8_t1), t2 = PRE_TABLE(pre_u8_t2);
    const __m256i t3 = PRE_TABLE(pre_u8_t3);
    const __m256i f = _mm256_set1_epi8(0x0F);
    __m256i p1 = PRE_PREV(x, prev, 1), p2 = PRE_PREV(x, prev, 2), p3 = PRE_PREV(x, prev, 3);
    __m256i sc = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(t1, _mm256_and_si256(_mm256_srli_epi16(p1, 4), f)),
                         _mm256_shuffle_epi8(t2, _mm256_and_si256(p1, f))),
        _mm256_shuffle_epi8(t3, _mm256_and_si256(_mm256_srli_epi16(x, 4), f)));
    /* the third and fourth bytes of 3 and 4 byte sequences must be continuations */
    __m256i must = _mm256_or_si256(_mm256_subs_epu8(p2, _mm256_set1_epi8((char)(0xE0 - 0x80))),
                                   _mm256_subs_epu8(p3, _mm256_set1_epi8((char)(0xF0 - 0x80))));
    return _mm256_xor_si256(_mm256_and_si256(must, _mm256_set1_epi8((char)0x80)), sc);
}

PRE_TARGET_AVX2 static int pre_utf8_avx2(const unsigned char *p, const unsigned char *pp,
                                         const unsigned char *s, const unsigned char *e,
                                         uint64_t x, uint64_t upto, unsigned *skip) {
    __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i x1 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    __m256i prev = pp ? _mm256_loadu_si256((const __m256i *)(const void *)(pp + 32))
                      : _mm256_setzero_si256();
    const __m256i z = _mm256_setzero_si256();
    uint64_t ok = PRE_MM256(_mm256_cmpeq_epi8(pre_u8_avx2(x0, prev), z)) |
                  PRE_MM256(_mm256_cmpeq_epi8(pre_u8_avx2(x1, x0), z)) << 32;
    (void)s;
    (void)e;
    (void)x;
    (void)skip;
    return !(~ok & upto);
}
#endif

#ifdef PRE_SSE2
/* A string's body from just after its opening quote: the byte after its closing quote, or
 * NULL (invalid, or a \u escape of a surrogate). ``*plain``: no escape, all ASCII.
 * ``masks``, ``escapes``, ``utf8``: one build's; ``fast``: the 16-byte SSE2 first look. */
PRE_INLINE const unsigned char *pre_string_t(
    const unsigned char *s, const unsigned char *e, int *plain,
    void (*masks)(const unsigned char *, pre_blk *),
    int (*escapes)(const unsigned char *, const unsigned char *, const unsigned char *,
                   uint64_t),
    int (*utf8)(const unsigned char *, const unsigned char *, const unsigned char *,
                const unsigned char *, uint64_t, uint64_t, unsigned *)) {
    const uint64_t even = 0x5555555555555555ULL;
    uint64_t carry = 0; /* the last block ends in an odd run of backslashes */
    unsigned skip = 0; /* bytes of the next block a sequence took */
    const unsigned char *pp = NULL; /* the previous block */
    int pl = 1, tail = 0;
    unsigned char tmp[64];
    if (e - s >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
        unsigned q = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')));
        unsigned o = (unsigned)_mm_movemask_epi8(_mm_or_si128(
            _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')), _mm_cmplt_epi8(x, _mm_set1_epi8(0x20))));
        if (q && !(o & ((q & (0u - q)) - 1))) {
            *plain = 1;
            return s + pre_ctz(q) + 1;
        }
    }
    for (;;) {
        pre_blk m;
        const unsigned char *p = s;
        uint64_t bs, follows, odd, runs, esc, end, upto;
        if (e - s < 64) { /* the line's last bytes, padded with spaces (no bit) */
            size_t n = (size_t)(e - s);
            if (n == 0) return NULL;
            memset(tmp, ' ', sizeof(tmp));
            memcpy(tmp, s, n);
            p = tmp;
        }
        masks(p, &m);
        /* escaped bytes: those after an odd run of backslashes (simdjson's find_escaped) */
        bs = m.bslash & ~carry;
        follows = (bs << 1) | carry;
        odd = bs & ~even & ~follows;
        runs = odd + bs;
        carry = runs < odd;
        esc = (even ^ (runs << 1)) & follows;
        end = m.quote & ~esc;
        if (end)
            upto = end ^ (end - 1); /* up to the closing quote */
        else if (p == tmp)
            return NULL; /* the line ends inside the string */
        else
            upto = ~(uint64_t)0;
        if (m.ctl & upto) return NULL;
        if ((esc & upto) && !escapes(p, s, e, esc & upto)) return NULL;
        if ((m.high & upto) || tail) {
            if (!utf8(p, pp, s, e, m.high & upto, upto, &skip)) return NULL;
        }
        tail = (m.high >> 61) != 0; /* a sequence may go on in the next block */
        if ((m.bslash | m.high) & upto) pl = 0;
        if (end) {
            *plain = pl;
            return s + pre_ctz(end) + 1;
        }
        pp = s;
        s += 64;
    }
}
#endif

#define PRE_DIGIT(c) ((c) >= '0' && (c) <= '9')

/* A number: the byte after it, or NULL (invalid, or one it does not judge: more than 18
 * integer digits, more than 40 fraction digits, an exponent of more than 2 digits). */
PRE_INLINE const unsigned char *pre_number(const unsigned char *s, const unsigned char *e) {
    const unsigned char *d;
    if (s < e && *s == '-') s++;
    d = s;
    if (s >= e || !PRE_DIGIT(*s)) return NULL;
    if (*s == '0')
        s++;
    else
        while (s < e && PRE_DIGIT(*s)) s++;
    if (s - d > 18) return NULL;
    if (s < e && *s == '.') {
        d = ++s;
        while (s < e && PRE_DIGIT(*s)) s++;
        if (s == d || s - d > 40) return NULL;
    }
    if (s < e && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < e && (*s == '+' || *s == '-')) s++;
        d = s;
        while (s < e && PRE_DIGIT(*s)) s++;
        if (s == d || s - d > 2) return NULL;
    }
    return s;
}

#define PRE_WS(s)                                                                      \
    while ((s) < e && (*(s) == ' ' || *(s) == '\t' || *(s) == '\r' || *(s) == '\n')) (s)++
#define PRE_STRING(s, plain) str((s), e, (plain))

/* 1: the line [line, line + len) cannot change a total (K_SKIP without yyjson); 0: any
 * other case (yyjson and the usual rules decide). The build's functions as pre_string_t. */
PRE_INLINE int pre_walk(const char *line, size_t len,
                        const unsigned char *(*str)(const unsigned char *,
                                                    const unsigned char *, int *)) {
    const unsigned char *s = (const unsigned char *)line, *e = s + len, *k;
    unsigned char stack[PRE_DEPTH];
    int sp = 0, types = 0, plain, in_message = 0;
    size_t kn;
    /* the shape scan_line asks for: "{...}", a CR before the newline allowed */
    if (len < 2 || s[0] != '{' || (e[-1] != '}' && (e[-1] != '\r' || e[-2] != '}'))) return 0;
    s++;
    stack[sp++] = '{';
object: /* just after '{' */
    PRE_WS(s);
    if (s < e && *s == '}') {
        s++;
        sp--;
        goto after;
    }
key:
    PRE_WS(s);
    if (s >= e || *s != '"') return 0;
    k = s + 1;
    s = PRE_STRING(k, &plain);
    if (!s) return 0;
    kn = (size_t)(s - 1 - k);
    PRE_WS(s);
    if (s >= e || *s != ':') return 0;
    s++;
    if (sp == 1) {
        if (!plain) return 0; /* an escape could spell "type" */
        in_message = kn == 7 && memcmp(k, "message", 7) == 0;
        if (kn == 4 && memcmp(k, "type", 4) == 0) {
            const unsigned char *v;
            size_t n;
            if (types++) return 0;
            PRE_WS(s);
            if (s >= e || *s != '"') return 0;
            v = s + 1;
            s = PRE_STRING(v, &plain);
            if (!s || !plain) return 0;
            n = (size_t)(s - 1 - v);
            if ((n == 9 && memcmp(v, "assistant", 9) == 0) ||
                (n == 12 && memcmp(v, "custom-title", 12) == 0) ||
                (n == 8 && memcmp(v, "ai-title", 8) == 0))
                return 0;
            goto after;
        }
    }
value:
    PRE_WS(s);
    if (s >= e) return 0;
    switch (*s) {
    case '"':
        k = s + 1;
        s = PRE_STRING(k, &plain);
        if (!s) return 0;
        /* "role": "assistant" early in a usage line's "message": yyjson reads the line
         * anyway (not so in another key's value, e.g. a progress line's nested message) */
        if (sp == 2 && in_message && s - k == 10 && memcmp(k, "assistant", 9) == 0) return 0;
        goto after;
    case '{':
        if (sp >= PRE_DEPTH) return 0;
        stack[sp++] = '{';
        s++;
        goto object;
    case '[':
        if (sp >= PRE_DEPTH) return 0;
        stack[sp++] = '[';
        s++;
        PRE_WS(s);
        if (s < e && *s == ']') {
            s++;
            sp--;
            goto after;
        }
        goto value;
    case 't':
        if (e - s < 4 || memcmp(s, "true", 4) != 0) return 0;
        s += 4;
        goto after;
    case 'f':
        if (e - s < 5 || memcmp(s, "false", 5) != 0) return 0;
        s += 5;
        goto after;
    case 'n':
        if (e - s < 4 || memcmp(s, "null", 4) != 0) return 0;
        s += 4;
        goto after;
    default:
        s = pre_number(s, e);
        if (!s) return 0;
        goto after;
    }
after: /* after a value (sp: the containers still open) */
    PRE_WS(s);
    if (sp == 0) return s == e;
    if (s >= e) return 0;
    if (*s == ',') {
        s++;
        if (stack[sp - 1] == '{') goto key;
        goto value;
    }
    if (*s == (stack[sp - 1] == '{' ? '}' : ']')) {
        s++;
        sp--;
        goto after;
    }
    return 0;
}

/* --- usage lines without a DOM ---------------------------------------------------------
 *
 * A line the pre-pass does not skip (a usage line, mostly) is walked again by the same
 * grammar, which now notes the value of each field scan_line reads (at its place: the top
 * object, its "message" object, that one's "usage", that one's "cache_creation"). It gives
 * up (yyjson decides, as before) on any doubt: anything the pre-pass's walk rejects, a key
 * of those objects written with an escape or non-ASCII bytes, a field present twice, a
 * string it needs (type, timestamp, the ids, cwd, model) with an escape or non-ASCII bytes.
 * Otherwise the rules of scan_line apply to the noted values as they do to yyjson's. */

enum {
    F_TYPE, F_STAMP, F_SID, F_CWD, F_RID, F_COST, F_MESSAGE, F_CTITLE, F_ATITLE, /* top */
    F_ID, F_MODEL, F_USAGE,                                                       /* message */
    F_IN, F_OUT, F_CC, F_CREAD, F_DETAIL,                                         /* usage */
    F_1H,                                                                         /* detail */
    F_N
};

/* a field's value: kind 0 absent, '"' a string (p, n: its body; plain: no escape, ASCII),
 * 'n' null, '{' an object, '0' digits only (p, n), 'x' anything else */
typedef struct {
    const unsigned char *p;
    size_t n;
    unsigned char kind, plain;
} pre_val;

#define PRE_KEY(name, id) \
    if (n == sizeof(name) - 1 && memcmp(k, name, n) == 0) return id
/* the field named k[0:n] in the object at ``level`` (1: the top), or -1 */
static int pre_field(int level, const unsigned char *k, size_t n) {
    switch (level) {
    case 1:
        PRE_KEY("type", F_TYPE);
        PRE_KEY("timestamp", F_STAMP);
        PRE_KEY("sessionId", F_SID);
        PRE_KEY("cwd", F_CWD);
        PRE_KEY("requestId", F_RID);
        PRE_KEY("costUSD", F_COST);
        PRE_KEY("message", F_MESSAGE);
        PRE_KEY("customTitle", F_CTITLE);
        PRE_KEY("aiTitle", F_ATITLE);
        break;
    case 2:
        PRE_KEY("id", F_ID);
        PRE_KEY("model", F_MODEL);
        PRE_KEY("usage", F_USAGE);
        break;
    case 3:
        PRE_KEY("input_tokens", F_IN);
        PRE_KEY("output_tokens", F_OUT);
        PRE_KEY("cache_creation_input_tokens", F_CC);
        PRE_KEY("cache_read_input_tokens", F_CREAD);
        PRE_KEY("cache_creation", F_DETAIL);
        break;
    case 4:
        PRE_KEY("ephemeral_1h_input_tokens", F_1H);
        break;
    }
    return -1;
}
#undef PRE_KEY

/* 1: the line is valid JSON (as the pre-pass's walk sees it) and ``f`` holds the values of
 * its fields; 0: any doubt. */
PRE_INLINE int pre_fields_t(const char *line, size_t len, pre_val *f,
                            const unsigned char *(*str)(const unsigned char *,
                                                        const unsigned char *, int *)) {
    const unsigned char *s = (const unsigned char *)line, *e = s + len, *k;
    unsigned char stack[PRE_DEPTH];
    int sp = 0, plain, track = 1, cur = -1; /* track: the depth of the deepest field object */
    memset(f, 0, F_N * sizeof(*f));
    if (len < 2 || s[0] != '{' || (e[-1] != '}' && (e[-1] != '\r' || e[-2] != '}'))) return 0;
    s++;
    stack[sp++] = '{';
object:
    PRE_WS(s);
    if (s < e && *s == '}') {
        s++;
        if (sp == track) track--;
        sp--;
        goto after;
    }
key:
    PRE_WS(s);
    if (s >= e || *s != '"') return 0;
    k = s + 1;
    s = PRE_STRING(k, &plain);
    if (!s) return 0;
    if (sp == track) {
        if (!plain) return 0; /* an escape could spell a field */
        cur = pre_field(sp, k, (size_t)(s - 1 - k));
        if (cur >= 0 && f[cur].kind) return 0; /* twice: yyjson's rules */
    }
    PRE_WS(s);
    if (s >= e || *s != ':') return 0;
    s++;
value:
    PRE_WS(s);
    if (s >= e) return 0;
    switch (*s) {
    case '"':
        k = s + 1;
        s = PRE_STRING(k, &plain);
        if (!s) return 0;
        if (cur >= 0) {
            f[cur].kind = '"';
            f[cur].p = k;
            f[cur].n = (size_t)(s - 1 - k);
            f[cur].plain = (unsigned char)plain;
        }
        cur = -1;
        goto after;
    case '{':
        if (sp >= PRE_DEPTH) return 0;
        if (cur >= 0) {
            f[cur].kind = '{';
            if (cur == F_MESSAGE || cur == F_USAGE || cur == F_DETAIL) track = sp + 1;
        }
        cur = -1;
        stack[sp++] = '{';
        s++;
        goto object;
    case '[':
        if (sp >= PRE_DEPTH) return 0;
        if (cur >= 0) f[cur].kind = 'x';
        cur = -1;
        stack[sp++] = '[';
        s++;
        PRE_WS(s);
        if (s < e && *s == ']') {
            s++;
            sp--;
            goto after;
        }
        goto value;
    case 't':
        if (e - s < 4 || memcmp(s, "true", 4) != 0) return 0;
        s += 4;
        break;
    case 'f':
        if (e - s < 5 || memcmp(s, "false", 5) != 0) return 0;
        s += 5;
        break;
    case 'n':
        if (e - s < 4 || memcmp(s, "null", 4) != 0) return 0;
        s += 4;
        if (cur >= 0) f[cur].kind = 'n';
        cur = -1;
        goto after;
    default:
        k = s;
        s = pre_number(s, e);
        if (!s) return 0;
        if (cur >= 0) {
            const unsigned char *d = k;
            while (d < s && PRE_DIGIT(*d)) d++;
            f[cur].kind = d == s ? '0' : 'x';
            f[cur].p = k;
            f[cur].n = (size_t)(s - k);
        }
        cur = -1;
        goto after;
    }
    if (cur >= 0) f[cur].kind = 'x'; /* true, false */
    cur = -1;
after:
    PRE_WS(s);
    if (sp == 0) return s == e;
    if (s >= e) return 0;
    if (*s == ',') {
        s++;
        if (stack[sp - 1] == '{') goto key;
        goto value;
    }
    if (*s == (stack[sp - 1] == '{' ? '}' : ']')) {
        s++;
        if (sp == track) track--;
        sp--;
        goto after;
    }
    return 0;
}
#undef PRE_STRING
#undef PRE_WS
#undef PRE_DIGIT

enum { PRE_SWAR = 0, PRE_SSE2_BUILD = 1, PRE_AVX2_BUILD = 2 };

static int prepass_swar(const char *line, size_t len) {
    return pre_walk(line, len, pre_string_swar);
}
#ifdef PRE_SSE2
static const unsigned char *pre_string_sse2(const unsigned char *s, const unsigned char *e,
                                            int *plain) {
    return pre_string_t(s, e, plain, pre_masks_sse2, pre_escapes_scalar, pre_utf8_walk);
}
static int prepass_sse2(const char *line, size_t len) {
    return pre_walk(line, len, pre_string_sse2);
}
#endif
#ifdef PRE_AVX2
PRE_TARGET_AVX2 static const unsigned char *pre_string_avx2(const unsigned char *s,
                                                            const unsigned char *e,
                                                            int *plain) {
    return pre_string_t(s, e, plain, pre_masks_avx2, pre_escapes_avx2, pre_utf8_avx2);
}
PRE_TARGET_AVX2 static int prepass_avx2(const char *line, size_t len) {
    return pre_walk(line, len, pre_string_avx2);
}
#endif

/* the best build the CPU runs (set at import; tests may pick a lower one) */
static int prepass_simd = PRE_SWAR;

#ifdef PRE_AVX2
/* the CPU has AVX2 and the OS saves its registers (cpuid and xgetbv: no runtime library) */
static int pre_has_avx2(void) {
    unsigned a, b, c, d, lo, hi;
    if (__get_cpuid_max(0, NULL) < 7 || !__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 27)) || !(c & (1u << 28))) return 0; /* OSXSAVE, AVX */
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & 6) != 6) return 0; /* XMM and YMM state */
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1;
}
#endif

static int prepass_best(void) {
#ifdef PRE_AVX2
    if (pre_has_avx2()) return PRE_AVX2_BUILD;
#endif
#ifdef PRE_SSE2
    return PRE_SSE2_BUILD;
#else
    return PRE_SWAR;
#endif
}

static int prepass(const char *line, size_t len) {
#ifdef PRE_AVX2
    if (prepass_simd == PRE_AVX2_BUILD) return prepass_avx2(line, len);
#endif
#ifdef PRE_SSE2
    if (prepass_simd == PRE_SSE2_BUILD) return prepass_sse2(line, len);
#endif
    return prepass_swar(line, len);
}

/* --- the candidate filter: lines that cannot count anything are not read ------------------
 *
 * What a line can change: a usage row (a line whose decoded top object has message.usage,
 * an object), a poison count (such a usage line with an impossible value), a title (a
 * "type" of "custom-title" or "ai-title"), or the bad-line counts. The first three need a
 * key "usage" or a string value ending in "title". In JSON a key or a string is a token
 * between two quote bytes that are never escaped, and each character inside is written
 * either as itself or as an escape; the two-character escapes (\" \\ \/ \b \f \n \r \t)
 * give no letter, and a letter written as \uXXXX is \u0041 to \u005A or \u0061 to \u007A:
 * for the lowercase letters of "usage" and "title" (a 61, e 65, g 67, i 69, l 6C, s 73,
 * t 74, u 75), the bytes \u006 or \u007 ("u" is lowercase in every JSON escape; "0", "6",
 * "7" are digits, so no other spelling exists; a surrogate pair gives no ASCII). No byte of
 * a valid UTF-8 multi-byte sequence is below 0x80, so letters and quotes are single bytes.
 * So the key "usage" with no letter escaped is the bytes "usage" between quotes, and a value
 * "custom-title" or "ai-title" with no letter of "title" escaped holds the bytes title"
 * (its last letters, then its closing quote), whatever its other characters. Hence: a line
 * that holds none of the bytes "usage" (with both quotes), title" , \u006 and \u007 can
 * give no row, no title and no poison count, whatever else it holds, valid JSON or not
 * (with bad UTF-8 too: Python reads such a line with the bad bytes replaced by U+FFFD, and
 * no ASCII byte is ever taken into a replaced sequence). Such a line is skipped unread, on
 * this path and on the Python one (parser._candidate, the same four patterns): a malformed
 * line that could not have counted anything is no longer counted as bad
 * (docs/bad-input.md). The filter may say "candidate" wrongly (a quoted "usage" in a tool's
 * output): the line is then read as before.
 *
 * The search runs from the line's end back (a usage line's "usage" is ~300-500 bytes from
 * its end, after the content): in each block, the bytes at +0 and +2 of every position are
 * compared with three pairs, u.a ("usage", one byte on), i.l ("title", one byte on) and
 * \.0 ("\u00"), and each hit is checked in full; blocks of 32 bytes (AVX2) or 16 (SSE2),
 * the last one overlapping the one before it, and one position at a time in the portable
 * build and for short lines. On the measured corpora the pairs hit every ~30 KB of text
 * that holds no pattern. */

static int filter_enabled = 1;            /* tests switch it off to compare */
static unsigned long long filtered_lines; /* lines it skipped (added with the GIL held) */

/* whether a pattern is at s[q]: "usage" (between quotes), "title" (one byte before, a quote
 * after) or "\u006" / "\u007" */
static int cand_at(const unsigned char *s, size_t len, size_t q) {
    switch (s[q]) {
    case 'u':
        return q >= 1 && q + 6 <= len && s[q - 1] == '"' && memcmp(s + q, "usage\"", 6) == 0;
    case 'i':
        return q >= 1 && q + 5 <= len && memcmp(s + q - 1, "title\"", 6) == 0;
    case '\\':
        return q + 5 <= len && s[q + 1] == 'u' && s[q + 2] == '0' && s[q + 3] == '0' &&
               (s[q + 4] == '6' || s[q + 4] == '7');
    }
    return 0;
}

/* the pairs: bit 1 u.a, 2 i.l, 4 \.0 (the byte at q, the byte at q + 2) */
static const unsigned char cand_first[256] = {['u'] = 1, ['i'] = 2, ['\\'] = 4};
static const unsigned char cand_third[256] = {['a'] = 1, ['l'] = 2, ['0'] = 4};

/* the positions q < n, from the last back (the portable build; short lines) */
static int cand_bytes(const unsigned char *s, size_t len, size_t n) {
    while (n-- > 0)
        if ((cand_first[s[n]] & cand_third[s[n + 2]]) && cand_at(s, len, n)) return 1;
    return 0;
}

static int candidate_swar(const char *line, size_t len) {
    return len >= 5 && cand_bytes((const unsigned char *)line, len, len - 2);
}

/* the search by blocks of ``w`` positions, each block's hits from ``mask`` (the bytes at +0
 * and +2 of each position against the pairs), from the line's end back, the last block
 * overlapping the one before it (the SSE2 and AVX2 builds) */
PRE_INLINE int cand_blocks_t(const unsigned char *s, size_t len, size_t w,
                             uint64_t (*mask)(const unsigned char *)) {
    size_t p;
    if (len < w + 2) return len >= 5 && cand_bytes(s, len, len - 2);
    p = len - w - 2; /* the block's w positions read 2 bytes past it */
    for (;;) {
        uint64_t bits = mask(s + p);
        while (bits) {
            if (cand_at(s, len, p + (size_t)pre_ctz(bits))) return 1;
            bits &= bits - 1;
        }
        if (p == 0) return 0;
        p = p > w ? p - w : 0;
    }
}

#ifdef PRE_SSE2
static inline uint64_t cand_mask_sse2(const unsigned char *q) {
    __m128i x0 = _mm_loadu_si128((const __m128i *)(const void *)q);
    __m128i x2 = _mm_loadu_si128((const __m128i *)(const void *)(q + 2));
    __m128i m = _mm_or_si128(
        _mm_or_si128(_mm_and_si128(_mm_cmpeq_epi8(x0, _mm_set1_epi8('u')),
                                   _mm_cmpeq_epi8(x2, _mm_set1_epi8('a'))),
                     _mm_and_si128(_mm_cmpeq_epi8(x0, _mm_set1_epi8('i')),
                                   _mm_cmpeq_epi8(x2, _mm_set1_epi8('l')))),
        _mm_and_si128(_mm_cmpeq_epi8(x0, _mm_set1_epi8('\\')),
                      _mm_cmpeq_epi8(x2, _mm_set1_epi8('0'))));
    return PRE_MM(m);
}

static int candidate_sse2(const char *line, size_t len) {
    return cand_blocks_t((const unsigned char *)line, len, 16, cand_mask_sse2);
}
#endif

#ifdef PRE_AVX2
PRE_TARGET_AVX2 static inline uint64_t cand_mask_avx2(const unsigned char *q) {
    __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)q);
    __m256i x2 = _mm256_loadu_si256((const __m256i *)(const void *)(q + 2));
    __m256i m = _mm256_or_si256(
        _mm256_or_si256(_mm256_and_si256(_mm256_cmpeq_epi8(x0, _mm256_set1_epi8('u')),
                                         _mm256_cmpeq_epi8(x2, _mm256_set1_epi8('a'))),
                        _mm256_and_si256(_mm256_cmpeq_epi8(x0, _mm256_set1_epi8('i')),
                                         _mm256_cmpeq_epi8(x2, _mm256_set1_epi8('l')))),
        _mm256_and_si256(_mm256_cmpeq_epi8(x0, _mm256_set1_epi8('\\')),
                         _mm256_cmpeq_epi8(x2, _mm256_set1_epi8('0'))));
    return PRE_MM256(m);
}

PRE_TARGET_AVX2 static int candidate_avx2(const char *line, size_t len) {
    return cand_blocks_t((const unsigned char *)line, len, 32, cand_mask_avx2);
}
#endif

/* Whether the line holds "usage" (quoted), title", \u006 or \u007 (the same build as the
 * pre-pass: _set_prepass_simd picks both). */
static int candidate(const char *line, size_t len) {
#ifdef PRE_AVX2
    if (prepass_simd == PRE_AVX2_BUILD) return candidate_avx2(line, len);
#endif
#ifdef PRE_SSE2
    if (prepass_simd == PRE_SSE2_BUILD) return candidate_sse2(line, len);
#endif
    return candidate_swar(line, len);
}

static int pre_fields_swar(const char *line, size_t len, pre_val *f) {
    return pre_fields_t(line, len, f, pre_string_swar);
}
#ifdef PRE_SSE2
static int pre_fields_sse2(const char *line, size_t len, pre_val *f) {
    return pre_fields_t(line, len, f, pre_string_sse2);
}
#endif
#ifdef PRE_AVX2
PRE_TARGET_AVX2 static int pre_fields_avx2(const char *line, size_t len, pre_val *f) {
    return pre_fields_t(line, len, f, pre_string_avx2);
}
#endif

/* str | None (or absent) */
static int pre_text(const pre_val *v) { return v->kind == 0 || v->kind == '"' || v->kind == 'n'; }

/* Annotated[int, Meta(ge=0, le=MAX_TOKENS)] (or absent: 0) */
static int pre_count(const pre_val *v, uint64_t max, int64_t *out) {
    uint64_t u = 0;
    size_t i;
    if (!v->kind) return 1;
    if (v->kind != '0') return 0; /* at most 18 digits (pre_number) */
    for (i = 0; i < v->n; i++) u = u * 10 + (uint64_t)(v->p[i] - '0');
    if (u > max) return 0;
    *out = (int64_t)u;
    return 1;
}

/* A string field copied into the arena (length 0: absent, null or ""). */
static int pre_put(pass1 *p, const pre_val *v, slice *out) {
    out->len = 0;
    if (v->kind != '"' || !v->n) return 1;
    return arena_put(p, (const char *)v->p, v->n, out);
}

/* ``r`` as a K_TITLE record of a session id and a title (copied into the arena): 0 when out
 * of memory */
static int title_rec(pass1 *p, rec *r, const char *sid, size_t sid_n, const char *t, size_t t_n,
                     int ai) {
    r->model.len = r->key.len = 0;
    if (!arena_put(p, sid, sid_n, &r->sid) || !arena_put(p, t, t_n, &r->cwd)) return 0;
    r->inp = ai;
    r->kind = K_TITLE;
    return 1;
}

/* A title line's session id and title (``t``: the field its type names) for pass 2's
 * ``title`` hook, when both are strings without escapes: 1 when ``r`` is decided (or p->nomem
 * set), 0 when yyjson must read the line (an escape: scan_line reads the two strings
 * yyjson unescaped, by the same rules).
 * What parse_line reads with obj.get: a value that is not a string (null, absent) gives no
 * title; another kind of value was already left to Python by pre_usage's pre_text test. */
static int pre_title(pass1 *p, const pre_val *sid, const pre_val *t, int ai, rec *r) {
    if (sid->kind != '"' || t->kind != '"') {
        r->kind = K_SKIP;
        return 1;
    }
    if (!sid->plain || !t->plain) return 0;
    if (!title_rec(p, r, (const char *)sid->p, sid->n, (const char *)t->p, t->n, ai))
        p->nomem = 1;
    return 1;
}

/* scan_line's rules on the fields of the line, without yyjson: 1 when ``r`` is decided (or
 * p->nomem set), 0 when yyjson must read the line. */
static int pre_usage(pass1 *p, const char *line, size_t len, uint64_t max_tokens, rec *r) {
    pre_val f[F_N];
    int ok, i;
#ifdef PRE_AVX2
    if (prepass_simd == PRE_AVX2_BUILD)
        ok = pre_fields_avx2(line, len, f);
    else
#endif
#ifdef PRE_SSE2
    if (prepass_simd == PRE_SSE2_BUILD)
        ok = pre_fields_sse2(line, len, f);
    else
#endif
        ok = pre_fields_swar(line, len, f);
    if (!ok) return 0;
    r->kind = K_PY;
    r->inp = r->out = r->cc = r->c1h = r->cread = 0;
    for (i = F_TYPE; i <= F_ATITLE; i++)
        if (i != F_COST && i != F_MESSAGE && !pre_text(&f[i])) return 1;
    if (f[F_COST].kind && f[F_COST].kind != 'n') return 1; /* legacy cost lines: Python */
    if (f[F_MESSAGE].kind && f[F_MESSAGE].kind != '{' && f[F_MESSAGE].kind != 'n') return 1;
    if (!pre_text(&f[F_ID]) || !pre_text(&f[F_MODEL])) return 1;
    if (f[F_USAGE].kind && f[F_USAGE].kind != '{' && f[F_USAGE].kind != 'n') return 1;
    if (!pre_count(&f[F_IN], max_tokens, &r->inp) ||
        !pre_count(&f[F_OUT], max_tokens, &r->out) ||
        !pre_count(&f[F_CC], max_tokens, &r->cc) ||
        !pre_count(&f[F_CREAD], max_tokens, &r->cread) ||
        !pre_count(&f[F_1H], max_tokens, &r->c1h))
        return 1;
    if (f[F_DETAIL].kind && f[F_DETAIL].kind != '{' && f[F_DETAIL].kind != 'n') return 1;
    if (f[F_TYPE].kind != '"') {
        r->kind = K_SKIP;
        return 1;
    }
    if (!f[F_TYPE].plain) return 0;
    if (f[F_TYPE].n == 9 && memcmp(f[F_TYPE].p, "assistant", 9) == 0) {
        const pre_val *t = &f[F_STAMP];
        slice a, b, c;
        if (f[F_USAGE].kind != '{' || t->kind != '"') {
            r->kind = K_SKIP; /* nothing to read */
            return 1;
        }
        for (i = F_STAMP; i <= F_MODEL; i++)
            if (f[i].kind == '"' && !f[i].plain) return 0; /* an escape: yyjson unescapes */
        if (t->n < 10) {
            r->kind = K_SKIP;
            return 1;
        }
        if (!canonical_stamp((const char *)t->p, t->n, &r->ts)) return 1;
        r->c1h = r->c1h < r->cc ? r->c1h : r->cc;
        r->key.len = 0;
        if (!pre_put(p, &f[F_SID], &r->sid) || !pre_put(p, &f[F_CWD], &r->cwd) ||
            !pre_put(p, &f[F_MODEL], &r->model))
            goto nomem;
        if (f[F_ID].kind == '"' && f[F_RID].kind == '"' && f[F_ID].n && f[F_RID].n) {
            if (!arena_put(p, (const char *)f[F_ID].p, f[F_ID].n, &a) ||
                !arena_put(p, ":", 1, &b) ||
                !arena_put(p, (const char *)f[F_RID].p, f[F_RID].n, &c))
                goto nomem;
            r->key.pos = a.pos;
            r->key.len = a.len + 1 + c.len;
        }
        r->kind = K_USAGE;
        return 1;
    }
    if (f[F_TYPE].n == 12 && memcmp(f[F_TYPE].p, "custom-title", 12) == 0)
        return pre_title(p, &f[F_SID], &f[F_CTITLE], 0, r);
    if (f[F_TYPE].n == 8 && memcmp(f[F_TYPE].p, "ai-title", 8) == 0)
        return pre_title(p, &f[F_SID], &f[F_ATITLE], 1, r);
    r->kind = K_SKIP;
    return 1;
nomem:
    p->nomem = 1;
    return 1;
}

/* Classify the line [off, end) of ``buf`` into ``r``. */
static void scan_line(pass1 *p, const char *buf, Py_ssize_t off, Py_ssize_t end,
                      uint64_t max_tokens, yyjson_alc *alc, rec *r) {
    const char *line = buf + off;
    size_t len = (size_t)(end - off);
    yyjson_doc *doc;
    yyjson_read_err err;
    yyjson_val *root, *k, *v, *message = NULL, *usage = NULL, *detail = NULL;
    yyjson_val *type = NULL, *stamp = NULL, *sid = NULL, *cwd = NULL, *rid = NULL;
    yyjson_val *mid = NULL, *model = NULL, *ctitle = NULL, *atitle = NULL;
    size_t i, max;
    int seen = 0, esc = 0;
    const char *sc;

    r->off = off;
    r->end = end;
    r->kind = K_PY;
    if (len == 0) {
        r->kind = K_SKIP;
        return;
    }
    if (p->filter && !candidate(line, len)) { /* nothing to count, valid or not */
        r->kind = K_SKIP;
        p->filtered++;
        return;
    }
    if (line[0] != '{' ||
        (line[len - 1] != '}' && (line[len - 1] != '\r' || len < 2 || line[len - 2] != '}')))
        return;
    if (p->prepass) {
        if (prepass(line, len)) {
            r->kind = K_SKIP;
            p->fast++;
            return;
        }
        if (pre_usage(p, line, len, max_tokens, r)) {
            p->fields++;
            return;
        }
        r->kind = K_PY;
    }
    if (len + YYJSON_PADDING_SIZE > p->scratch_size) {
        size_t size = p->scratch_size ? p->scratch_size : 1 << 16;
        char *s;
        while (len + YYJSON_PADDING_SIZE > size) size *= 2;
        s = (char *)realloc(p->scratch, size);
        if (!s) {
            p->nomem = 1;
            return;
        }
        p->scratch = s;
        p->scratch_size = size;
    }
    sc = p->scratch;
    memcpy(p->scratch, line, len);
    memset(p->scratch + len, 0, YYJSON_PADDING_SIZE);
    doc = yyjson_read_opts(p->scratch, len, YYJSON_READ_INSITU, alc, &err);
    if (!doc) return;
    root = yyjson_doc_get_root(doc);
    if (!yyjson_is_obj(root) || !depth_ok(doc)) goto python;

#define FIELD(name, bit, target)                                                \
    if (key_is(k, name, sizeof(name) - 1, sc, line, len, &esc)) {               \
        if (esc || (seen & (bit))) goto python;                                 \
        seen |= (bit);                                                          \
        target;                                                                 \
        continue;                                                               \
    }
    yyjson_obj_foreach(root, i, max, k, v) {
        FIELD("type", 1, if (!is_text(v)) goto python; type = v)
        FIELD("timestamp", 2, if (!is_text(v)) goto python; stamp = v)
        FIELD("sessionId", 4, if (!is_text(v)) goto python; sid = v)
        FIELD("cwd", 8, if (!is_text(v)) goto python; cwd = v)
        FIELD("requestId", 16, if (!is_text(v)) goto python; rid = v)
        /* legacy cost lines (rare): Python (a number's literal decides int or float) */
        FIELD("costUSD", 32, if (!yyjson_is_null(v)) goto python)
        FIELD("message", 64, if (yyjson_is_obj(v)) message = v; else if (!yyjson_is_null(v)) goto python)
        FIELD("customTitle", 128, if (!is_text(v)) goto python; ctitle = v)
        FIELD("aiTitle", 256, if (!is_text(v)) goto python; atitle = v)
    }
    r->inp = r->out = r->cc = r->c1h = r->cread = 0;
    if (message) {
        seen = 0;
        yyjson_obj_foreach(message, i, max, k, v) {
            FIELD("id", 1, if (!is_text(v)) goto python; mid = v)
            FIELD("model", 2, if (!is_text(v)) goto python; model = v)
            FIELD("usage", 4, if (yyjson_is_obj(v)) usage = v; else if (!yyjson_is_null(v)) goto python)
        }
    }
    if (usage) {
        seen = 0;
        yyjson_obj_foreach(usage, i, max, k, v) {
            FIELD("input_tokens", 1, if (!count_of(v, max_tokens, &r->inp)) goto python)
            FIELD("output_tokens", 2, if (!count_of(v, max_tokens, &r->out)) goto python)
            FIELD("cache_creation_input_tokens", 4,
                  if (!count_of(v, max_tokens, &r->cc)) goto python)
            FIELD("cache_read_input_tokens", 8,
                  if (!count_of(v, max_tokens, &r->cread)) goto python)
            FIELD("cache_creation", 16, if (yyjson_is_obj(v)) detail = v; else if (!yyjson_is_null(v)) goto python)
        }
    }
    if (detail) {
        seen = 0;
        yyjson_obj_foreach(detail, i, max, k, v) {
            FIELD("ephemeral_1h_input_tokens", 1,
                  if (!count_of(v, max_tokens, &r->c1h)) goto python)
        }
    }
#undef FIELD
    if (!type || !yyjson_is_str(type)) goto skip;
    if (yyjson_equals_str(type, "assistant")) {
        const char *t;
        size_t tl;
        if (!usage || !stamp || !yyjson_is_str(stamp)) goto skip; /* nothing to read */
        t = yyjson_get_str(stamp);
        tl = yyjson_get_len(stamp);
        if (tl < 10) goto skip; /* fewer bytes, so fewer than 10 characters: unread */
        if (!canonical_stamp(t, tl, &r->ts)) goto python;
        r->c1h = r->c1h < r->cc ? r->c1h : r->cc;
        r->sid.len = r->cwd.len = r->model.len = r->key.len = 0;
        if (sid && yyjson_get_len(sid) &&
            !arena_put(p, yyjson_get_str(sid), yyjson_get_len(sid), &r->sid))
            goto nomem;
        if (cwd && yyjson_get_len(cwd) &&
            !arena_put(p, yyjson_get_str(cwd), yyjson_get_len(cwd), &r->cwd))
            goto nomem;
        if (model && yyjson_get_len(model) &&
            !arena_put(p, yyjson_get_str(model), yyjson_get_len(model), &r->model))
            goto nomem;
        if (mid && rid && yyjson_get_len(mid) && yyjson_get_len(rid)) {
            slice a, b, c;
            if (!arena_put(p, yyjson_get_str(mid), yyjson_get_len(mid), &a) ||
                !arena_put(p, ":", 1, &b) ||
                !arena_put(p, yyjson_get_str(rid), yyjson_get_len(rid), &c))
                goto nomem;
            r->key.pos = a.pos;
            r->key.len = a.len + 1 + c.len;
        }
        r->kind = K_USAGE;
        yyjson_doc_free(doc);
        return;
    }
    if (yyjson_equals_str(type, "custom-title") || yyjson_equals_str(type, "ai-title")) {
        /* pre_title's rules on yyjson's strings (escapes undone): what obj.get reads */
        int ai = yyjson_equals_str(type, "ai-title");
        yyjson_val *t = ai ? atitle : ctitle;
        if (!sid || !yyjson_is_str(sid) || !t || !yyjson_is_str(t)) goto skip;
        if (!title_rec(p, r, yyjson_get_str(sid), yyjson_get_len(sid), yyjson_get_str(t),
                       yyjson_get_len(t), ai))
            goto nomem;
        yyjson_doc_free(doc);
        return;
    }
skip:
    r->kind = K_SKIP;
python:
    yyjson_doc_free(doc);
    return;
nomem:
    p->nomem = 1;
    yyjson_doc_free(doc);
}

/* --- pass 2: rows, with the GIL ------------------------------------------------------------ */

/* the shown text of a raw session id, cwd or model (one str object per value) */
typedef struct {
    char *raw;
    size_t len, cap;
    PyObject *shown; /* strong reference, or NULL */
} memo;

static PyObject *shown_of(const char *s, size_t n, memo *m, PyObject *strings,
                          PyObject *text) {
    PyObject *raw, *shown;
    if (m->shown && m->len == n && memcmp(m->raw, s, n) == 0) {
        Py_INCREF(m->shown);
        return m->shown;
    }
    raw = PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "strict");
    if (!raw) return NULL;
    shown = PyDict_GetItemWithError(strings, raw);
    if (shown) {
        /* put_row reads it with PyUnicode_GET_LENGTH: a value of another type would be
         * read as a str (past the end of a small object) */
        if (!PyUnicode_Check(shown)) {
            PyErr_SetString(PyExc_TypeError, "strings: a value is not a str");
            Py_DECREF(raw);
            return NULL;
        }
        Py_INCREF(shown);
    } else if (PyErr_Occurred()) {
        Py_DECREF(raw);
        return NULL;
    } else {
        shown = PyObject_CallOneArg(text, raw);
        if (!shown) {
            Py_DECREF(raw);
            return NULL;
        }
        if (!PyUnicode_Check(shown)) {
            PyErr_SetString(PyExc_TypeError, "text() must return str");
            Py_DECREF(shown);
            Py_DECREF(raw);
            return NULL;
        }
    }
    Py_DECREF(raw);
    if (n > m->cap) {
        char *b = (char *)realloc(m->raw, n);
        if (!b) {
            Py_DECREF(shown);
            PyErr_NoMemory();
            return NULL;
        }
        m->raw = b;
        m->cap = n;
    }
    memcpy(m->raw, s, n);
    m->len = n;
    Py_XSETREF(m->shown, Py_NewRef(shown));
    return shown;
}

typedef struct {
    PyObject *empty, *unknown, *zero;
} consts;

/* --- pricing in pass 2: tokmon.core.pricing.RowPricer's arithmetic, bit for bit -----------
 *
 * ``price`` (scan's optional last argument) is RowPricer.native: (rates, resolve, display,
 * threshold). ``rates`` maps a row's model (its shown text, "unknown" included) to the
 * tuple (input, output, cache write, 1-hour cache write, cache read, the same tuple above
 * the tier or None) or None (no price: cost 0.0); a model not in it is resolved by
 * ``resolve(model)`` (which registers unknown models and fills ``rates``). ``display``:
 * the cost is the row's costUSD or 0.0, and C's rows have none (lines with a costUSD go to
 * Python), so 0.0; every other mode prices a row without costUSD. The cost is
 * inp * pi + out * po + (cc - c1h) * pw + c1h * pw1 + cr * pr, left to right, as Python
 * computes it on ints and floats: each int (below 2**53) made a double exactly, each product
 * and each partial sum rounded to a double (stored in a volatile: no fused multiply-add, no
 * excess precision), so the same float bit for bit (tests/test_pricing_rows.py). */
typedef struct {
    PyObject *rates;   /* NULL: no pricing (the cost stays 0.0 for Python to fill) */
    PyObject *resolve;
    int display;
    long long threshold;
    PyObject *model; /* the last model priced, and its rates (strong references) */
    PyObject *got;
} pricing;

static int rates_of(PyObject *t, double out[5], PyObject **above) {
    Py_ssize_t i;
    if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 6) goto bad;
    for (i = 0; i < 5; i++) {
        PyObject *v = PyTuple_GET_ITEM(t, i);
        if (!PyFloat_CheckExact(v)) goto bad;
        out[i] = PyFloat_AS_DOUBLE(v);
    }
    *above = PyTuple_GET_ITEM(t, 5);
    return 0;
bad:
    PyErr_SetString(PyExc_TypeError, "price: rates must be a tuple of 5 floats and the tier");
    return -1;
}

/* the cost of ``r`` (model: its shown model) into ``*cost``; -1 on an error */
static int row_cost(pricing *pr, PyObject *model, const rec *r, double *cost) {
    PyObject *got, *above;
    double v[5];
    volatile double s, t;
    if (pr->display) {
        *cost = 0.0;
        return 0;
    }
    if (model == pr->model) {
        got = pr->got;
    } else {
        got = PyDict_GetItemWithError(pr->rates, model);
        if (got) {
            Py_INCREF(got);
        } else {
            if (PyErr_Occurred()) return -1;
            got = PyObject_CallOneArg(pr->resolve, model);
            if (!got) return -1;
        }
        Py_XSETREF(pr->got, got);
        Py_XSETREF(pr->model, Py_NewRef(model));
    }
    if (got == Py_None) {
        *cost = 0.0;
        return 0;
    }
    if (rates_of(got, v, &above) < 0) return -1;
    if (above != Py_None && r->inp + r->cc + r->cread > pr->threshold &&
        rates_of(above, v, &above) < 0)
        return -1;
    s = (double)r->inp * v[0];
    t = (double)r->out * v[1];
    s = s + t;
    t = (double)(r->cc - r->c1h) * v[2];
    s = s + t;
    t = (double)r->c1h * v[3];
    s = s + t;
    t = (double)r->cread * v[4];
    s = s + t;
    *cost = s;
    return 0;
}

static int put_row(const pass1 *p, const rec *r, Py_ssize_t base, PyObject *source,
                   PyObject *best, PyObject *strings, PyObject *text, memo *memos,
                   const consts *c, pricing *pr, double ts_min, double ts_max,
                   long long *poison) {
    PyObject *key, *old, *row = NULL, *sid = NULL, *cwd = NULL, *model = NULL;
    int superseded = 0;
    double cost = 0.0;
    if (r->key.len)
        key = PyUnicode_DecodeUTF8(p->arena + r->key.pos, (Py_ssize_t)r->key.len, "strict");
    else
        key = PyUnicode_FromFormat("@%U:%zd", source, base + r->off);
    if (!key) return -1;
    old = PyDict_GetItemWithError(best, key);
    if (old) {
        long long prev;
        if (!PyList_Check(old) || PyList_GET_SIZE(old) <= ROW_OUTPUT) {
            PyErr_SetString(PyExc_TypeError, "best: not a row");
            goto fail;
        }
        prev = PyLong_AsLongLong(PyList_GET_ITEM(old, ROW_OUTPUT));
        if (prev == -1 && PyErr_Occurred()) goto fail;
        superseded = r->out <= prev;
    } else if (PyErr_Occurred()) {
        goto fail;
    }
    if (!(ts_min <= r->ts && r->ts < ts_max)) {
        ++*poison; /* valid JSON, so not listed among the bad lines */
        Py_DECREF(key);
        return 0;
    }
    if (superseded) {
        Py_DECREF(key);
        return 0;
    }
#define SHOWN(var, sl, i, dflt)                                                        \
    if ((sl).len) {                                                                    \
        var = shown_of(p->arena + (sl).pos, (sl).len, &memos[i], strings, text);       \
        if (!var) goto fail;                                                           \
        if (PyUnicode_GET_LENGTH(var) == 0) Py_SETREF(var, Py_NewRef(dflt));           \
    } else {                                                                           \
        var = Py_NewRef(dflt);                                                         \
    }
    SHOWN(sid, r->sid, 0, c->unknown)
    SHOWN(cwd, r->cwd, 1, c->empty)
    SHOWN(model, r->model, 2, c->unknown)
#undef SHOWN
    if (pr->rates && row_cost(pr, model, r, &cost) < 0) goto fail;
    row = PyList_New(12);
    if (!row) goto fail;
    {
        PyObject *items[12];
        int i;
        items[0] = PyFloat_FromDouble(r->ts);
        items[1] = sid;
        items[2] = cwd;
        items[3] = model;
        items[4] = PyLong_FromLongLong(r->inp);
        items[5] = PyLong_FromLongLong(r->out);
        items[6] = PyLong_FromLongLong(r->cc);
        items[7] = PyLong_FromLongLong(r->c1h);
        items[8] = PyLong_FromLongLong(r->cread);
        items[9] = Py_NewRef(key);
        /* (0.0 shared; -0.0, a negative price times no tokens, is its own float) */
        items[10] = cost != 0.0 || signbit(cost) ? PyFloat_FromDouble(cost) : Py_NewRef(c->zero);
        items[11] = Py_NewRef(Py_None);
        sid = cwd = model = NULL;
        for (i = 0; i < 12; i++) PyList_SET_ITEM(row, i, items[i]); /* steals (NULL too) */
        for (i = 0; i < 12; i++)
            if (!items[i]) goto fail;
    }
    if (PyDict_SetItem(best, key, row) < 0) goto fail;
    Py_DECREF(row);
    Py_DECREF(key);
    return 0;
fail:
    Py_XDECREF(row);
    Py_XDECREF(sid);
    Py_XDECREF(cwd);
    Py_XDECREF(model);
    Py_DECREF(key);
    return -1;
}

/* --- the fingerprint: BLAKE2b (RFC 7693) of a file's first and last 1 KiB --------------------
 *
 * tokmon.core.reader.fingerprint's digest (hashlib.blake2b(digest_size=FP_BYTES) over the
 * first FP_WINDOW bytes before ``end``, then the last FP_WINDOW bytes before it), computed in pass
 * 1 (the GIL released) when scan() is asked for it: hashed in Python, each of a file's two
 * windows released and took the GIL again, and in a cold scan those hand-overs between the
 * two scan threads cost more than the hashing (docs/performance.md, twelfth session).
 * Unkeyed, sequential mode, as RFC 7693's reference code; tests/test_native_pricing.py holds
 * it to hashlib at every length and split. */
#define FP_WINDOW 1024 /* tokmon.core.reader.FP_WINDOW (checked by parser.py) */
#define FP_BYTES 9     /* tokmon.core.reader.FP_BYTES (the same): 18 hex digits */

typedef struct {
    unsigned char b[128];
    uint64_t h[8];
    uint64_t t[2];
    size_t c;
} b2b_ctx;

static const uint64_t b2b_iv[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL,
    0xA54FF53A5F1D36F1ULL, 0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL,
    0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL,
};

static const unsigned char b2b_sigma[10][16] = { /* (rounds 10 and 11: rows 0 and 1) */
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

#define B2B_ROTR(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
#define B2B_G(a, b, c, d, x, y)            \
    do {                                    \
        v[a] = v[a] + v[b] + (x);           \
        v[d] = B2B_ROTR(v[d] ^ v[a], 32);   \
        v[c] = v[c] + v[d];                 \
        v[b] = B2B_ROTR(v[b] ^ v[c], 24);   \
        v[a] = v[a] + v[b] + (y);           \
        v[d] = B2B_ROTR(v[d] ^ v[a], 16);   \
        v[c] = v[c] + v[d];                 \
        v[b] = B2B_ROTR(v[b] ^ v[c], 63);   \
    } while (0)

/* one round: G over the columns, then the diagonals, with the round's message schedule
 * (``r`` a constant: the indexes are resolved at compile time, the words stay in registers) */
#define B2B_ROUND(r)                                                         \
    do {                                                                     \
        B2B_G(0, 4, 8, 12, m[b2b_sigma[r][0]], m[b2b_sigma[r][1]]);          \
        B2B_G(1, 5, 9, 13, m[b2b_sigma[r][2]], m[b2b_sigma[r][3]]);          \
        B2B_G(2, 6, 10, 14, m[b2b_sigma[r][4]], m[b2b_sigma[r][5]]);         \
        B2B_G(3, 7, 11, 15, m[b2b_sigma[r][6]], m[b2b_sigma[r][7]]);         \
        B2B_G(0, 5, 10, 15, m[b2b_sigma[r][8]], m[b2b_sigma[r][9]]);         \
        B2B_G(1, 6, 11, 12, m[b2b_sigma[r][10]], m[b2b_sigma[r][11]]);       \
        B2B_G(2, 7, 8, 13, m[b2b_sigma[r][12]], m[b2b_sigma[r][13]]);        \
        B2B_G(3, 4, 9, 14, m[b2b_sigma[r][14]], m[b2b_sigma[r][15]]);        \
    } while (0)

static void b2b_compress(b2b_ctx *ctx, int last) {
    uint64_t v[16], m[16];
    int i;
    for (i = 0; i < 8; i++) {
        v[i] = ctx->h[i];
        v[i + 8] = b2b_iv[i];
    }
    v[12] ^= ctx->t[0];
    v[13] ^= ctx->t[1];
    if (last) v[14] = ~v[14];
    for (i = 0; i < 16; i++) { /* little-endian words, whatever the machine's order */
        const unsigned char *q = ctx->b + 8 * i;
        m[i] = (uint64_t)q[0] | (uint64_t)q[1] << 8 | (uint64_t)q[2] << 16 |
               (uint64_t)q[3] << 24 | (uint64_t)q[4] << 32 | (uint64_t)q[5] << 40 |
               (uint64_t)q[6] << 48 | (uint64_t)q[7] << 56;
    }
    B2B_ROUND(0);
    B2B_ROUND(1);
    B2B_ROUND(2);
    B2B_ROUND(3);
    B2B_ROUND(4);
    B2B_ROUND(5);
    B2B_ROUND(6);
    B2B_ROUND(7);
    B2B_ROUND(8);
    B2B_ROUND(9);
    B2B_ROUND(0); /* rounds 10 and 11 */
    B2B_ROUND(1);
    for (i = 0; i < 8; i++) ctx->h[i] ^= v[i] ^ v[i + 8];
}

static void b2b_init(b2b_ctx *ctx, size_t outlen) {
    int i;
    for (i = 0; i < 8; i++) ctx->h[i] = b2b_iv[i];
    ctx->h[0] ^= 0x01010000ULL ^ (uint64_t)outlen; /* no key */
    ctx->t[0] = ctx->t[1] = 0;
    ctx->c = 0;
}

static void b2b_update(b2b_ctx *ctx, const unsigned char *in, size_t n) {
    while (n > 0) {
        size_t k;
        if (ctx->c == 128) { /* a full block is compressed once more input follows */
            ctx->t[0] += 128;
            if (ctx->t[0] < 128) ctx->t[1]++;
            b2b_compress(ctx, 0);
            ctx->c = 0;
        }
        k = 128 - ctx->c < n ? 128 - ctx->c : n;
        memcpy(ctx->b + ctx->c, in, k);
        ctx->c += k;
        in += k;
        n -= k;
    }
}

/* reader.fingerprint's hex digest of a file whose first ``end`` (> 0) bytes are buf[:end] */
static void fp_hex(const unsigned char *buf, size_t end, char out[2 * FP_BYTES + 1]) {
    static const char hex[] = "0123456789abcdef";
    b2b_ctx ctx;
    size_t i, lo = end > FP_WINDOW ? end - FP_WINDOW : 0;
    b2b_init(&ctx, FP_BYTES);
    b2b_update(&ctx, buf, end < FP_WINDOW ? end : FP_WINDOW);
    b2b_update(&ctx, buf + lo, end - lo);
    ctx.t[0] += ctx.c;
    if (ctx.t[0] < ctx.c) ctx.t[1]++;
    memset(ctx.b + ctx.c, 0, 128 - ctx.c);
    b2b_compress(&ctx, 1);
    for (i = 0; i < FP_BYTES; i++) {
        unsigned char byte = (unsigned char)(ctx.h[i / 8] >> (8 * (i % 8)));
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 15];
    }
    out[2 * FP_BYTES] = 0;
}

/* --- a whole file read in pass 1 -------------------------------------------------------------
 *
 * scan(..., fd=, size=): the file open at ``fd`` (at its start) is read into ``buf`` in the
 * same GIL-free stretch as its lines are parsed and its fingerprint taken (reading it in
 * Python released and took the GIL once more per read, and opening it with ``open()``
 * twice: a stat): read until a read returns nothing, or, once ``size`` bytes (the stat the
 * refresh planned from) are read, until a read shorter than the room left
 * (tokmon.core.reader.LineReader's rule); the complete lines are those before the last
 * newline. When the buffer fills first (the file grew past it) nothing is parsed and the
 * caller reads the file the usual way. */
/* the last ``c`` in s[0:n] (memrchr is a GNU extension) */
static const void *memrchr_(const void *s, int c, size_t n) {
    const unsigned char *p = (const unsigned char *)s + n;
    while (p > (const unsigned char *)s)
        if (*--p == (unsigned char)c) return p;
    return NULL;
}

typedef struct {
    int fd;
    Py_ssize_t size;
    Py_ssize_t got;  /* bytes read */
    int err;         /* errno of a failed read, else 0 */
    int full;        /* the buffer filled before the end */
} whole;

static void read_whole(whole *w, char *buf, Py_ssize_t cap) {
    Py_ssize_t pos = 0;
    for (;;) {
        Py_ssize_t room = cap - pos, n;
        if (room == 0) {
            w->full = 1;
            break;
        }
#ifdef _WIN32
        n = _read(w->fd, buf + pos, (unsigned)(room > 0x40000000 ? 0x40000000 : room));
#else
        n = read(w->fd, buf + pos, (size_t)room);
#endif
        if (n < 0) {
            if (errno == EINTR) continue;
            w->err = errno;
            break;
        }
        if (n == 0) break;
        pos += n;
        if (n < room && w->size >= 0 && w->size <= pos) break; /* the end (LineReader) */
    }
    w->got = pos;
}

/* A file's name for the OS (from a str: bytes, wide characters on Windows), its opening
 * and its closing; osname_of is NULL with an exception set. */
#ifdef _WIN32
typedef wchar_t *osname;
static osname osname_of(PyObject *path) { return PyUnicode_AsWideCharString(path, NULL); }
static void osname_free(osname name) { PyMem_Free(name); }
static int os_open(osname name) { return _wopen(name, _O_RDONLY | _O_BINARY | _O_NOINHERIT); }
static void os_close(int fd) { _close(fd); }
#else
typedef PyObject *osname;
static osname osname_of(PyObject *path) { return PyUnicode_EncodeFSDefault(path); }
static void osname_free(osname name) { Py_XDECREF(name); }
static int os_open(osname name) { return open(PyBytes_AS_STRING(name), O_RDONLY | O_CLOEXEC); }
static void os_close(int fd) { close(fd); }
#endif

/* the end of the complete lines read_whole read into buf (0: none, or the read failed or
 * filled the buffer) */
static Py_ssize_t lines_end(const whole *w, const char *buf) {
    const char *nl;
    if (w->err || w->full || !w->got) return 0;
    nl = (const char *)memrchr_(buf, '\n', (size_t)w->got);
    return nl ? (Py_ssize_t)(nl - buf) + 1 : 0;
}

/* the file ``name`` opened, read into buf (read_whole; w->size: the stat's size) and closed,
 * without the GIL: the end of its complete lines; 0 with *open_err set when it did not open
 * (opening and closing here: no GIL hand-over for either) */
static Py_ssize_t read_named(whole *w, osname name, char *buf, Py_ssize_t cap, int *open_err) {
    do {
        w->fd = os_open(name);
    } while (w->fd < 0 && errno == EINTR);
    if (w->fd < 0) {
        *open_err = errno;
        return 0;
    }
    read_whole(w, buf, cap);
    os_close(w->fd);
    w->fd = -1;
    return lines_end(w, buf);
}

/* --- buffers kept between calls -------------------------------------------------------------
 *
 * A call's records, string arena, yyjson's scratch copy and allocator are taken from here
 * and given back (with the GIL held: no lock of their own), so a scan of thousands of
 * files does not malloc and free them for each block. With glibc's malloc limited to one
 * arena (tune_malloc, below) every malloc and free of the scan threads takes the lock the
 * calling thread's SQLite and Python allocations take too: in a cold scan the threads slept
 * ~300 times on it (docs/performance.md, twelfth session). Kept only while small (a
 * buffer grown past its bound is freed: a long line's memory is not held); _trim() (the
 * scan's end, tokmon.core.scan.scan_all) frees them all. */
typedef struct {
    rec *recs;
    size_t cap;
    char *arena;
    size_t size;
    char *scratch;
    size_t scratch_size;
    yyjson_alc *alc;
} kit;

#define KITS 4                     /* at most this many kept (one per scan thread) */
#define KIT_RECS 2048              /* records (~280 KB) */
#define KIT_ARENA (256 * 1024)     /* bytes of strings */
#define KIT_SCRATCH (1 << 16)      /* scratch bytes (and the allocator, which grew with it) */
static kit kits[KITS];
static int nkits = 0;

static void kit_free(kit *k) {
    free(k->recs);
    free(k->arena);
    free(k->scratch);
    if (k->alc) yyjson_alc_dyn_free(k->alc);
    memset(k, 0, sizeof(*k));
}

/* a kit for pass 1 into p (its counts zeroed) and *alc; 0 when out of memory */
static int kit_take(pass1 *p, yyjson_alc **alc) {
    kit k;
    if (nkits > 0) {
        k = kits[--nkits];
    } else {
        memset(&k, 0, sizeof(k));
        k.alc = yyjson_alc_dyn_new();
        if (!k.alc) return 0;
    }
    p->recs = k.recs;
    p->cap = k.cap;
    p->arena = k.arena;
    p->size = k.size;
    p->scratch = k.scratch;
    p->scratch_size = k.scratch_size;
    *alc = k.alc;
    return 1;
}

static void kit_give(pass1 *p, yyjson_alc *alc) {
    kit k;
    k.recs = p->recs;
    k.cap = p->cap;
    k.arena = p->arena;
    k.size = p->size;
    k.scratch = p->scratch;
    k.scratch_size = p->scratch_size;
    k.alc = alc;
    p->recs = NULL;
    p->arena = p->scratch = NULL;
    if (nkits == KITS || k.cap > KIT_RECS || k.size > KIT_ARENA ||
        k.scratch_size > KIT_SCRATCH) {
        kit_free(&k);
        return;
    }
    kits[nkits++] = k;
}

/* pass 1 of the complete lines of buf[start:stop] into p's records (p->nomem when out of
 * memory), without the GIL */
static void pass1_lines(pass1 *p, const char *buf, Py_ssize_t start, Py_ssize_t stop,
                        uint64_t max_tokens, yyjson_alc *alc) {
    Py_ssize_t s = start;
    while (s < stop && !p->nomem) {
        const char *nl = (const char *)memchr(buf + s, '\n', (size_t)(stop - s));
        Py_ssize_t end = nl ? (Py_ssize_t)(nl - buf) : stop;
        if (p->n == p->cap && !grow_recs(p)) {
            p->nomem = 1;
            break;
        }
        scan_line(p, buf, s, end, max_tokens, alc, &p->recs[p->n]);
        /* Keep a record only for a usage line or the first of a run of lines for
         * Python: a record per line made a block of blank or short lines cost ~136
         * bytes a line (a 1 MB block of newlines: ~150 MB). A skipped line between
         * two lines for Python joins their run: Python skips it too. */
        if (p->recs[p->n].kind == K_PY && p->n > 0 && p->recs[p->n - 1].kind == K_PY)
            p->recs[p->n - 1].end = end;
        else if (p->recs[p->n].kind != K_SKIP)
            p->n++;
        s = end + 1;
    }
}

/* one of a K_TITLE record's strings (a slice of p's arena) as a str */
static PyObject *title_str(const pass1 *p, slice s) {
    if (s.len == 0) return PyUnicode_FromStringAndSize("", 0); /* (its pos may be unset) */
    return PyUnicode_DecodeUTF8(p->arena + s.pos, (Py_ssize_t)s.len, "strict");
}

/* a K_TITLE record to title(session id, type, title): -1 with an exception set */
static int put_title(const pass1 *p, const rec *r, PyObject *title) {
    PyObject *sid = title_str(p, r->sid), *text = sid ? title_str(p, r->cwd) : NULL, *res;
    res = text ? PyObject_CallFunction(title, "OsO", sid, r->inp ? "ai-title" : "custom-title",
                                       text)
               : NULL;
    Py_XDECREF(sid);
    Py_XDECREF(text);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* pass 2 of p's records (complete lines up to ``stop``), with the GIL: usage rows into
 * ``best``; each run of lines for Python to ``fallback``: fallback(a, b), offsets into the
 * scanned buffer, when ``runs`` is NULL, else fallback(bytes, file offset) of the run's
 * copy, the runs' bytes one after another in ``runs``; each title line C read to
 * ``title`` (when it is NULL, only with ``runs`` NULL: to fallback(a, b) as its own run). -1
 * with an exception set. */
static int pass2(const pass1 *p, Py_ssize_t stop, const char *runs, Py_ssize_t base,
                 PyObject *source, PyObject *best, PyObject *strings, PyObject *text,
                 PyObject *fallback, PyObject *title, pricing *pr, double ts_min,
                 double ts_max, long long *poison) {
    memo memos[3];
    consts c = {NULL, NULL, NULL};
    size_t i, at = 0;
    int failed = 0;
    memset(memos, 0, sizeof(memos));
    c.empty = PyUnicode_FromStringAndSize("", 0);
    c.unknown = PyUnicode_FromString("unknown");
    c.zero = PyFloat_FromDouble(0.0);
    if (!c.empty || !c.unknown || !c.zero) failed = 1;
    for (i = 0; i < p->n && !failed; i++) {
        const rec *r = &p->recs[i];
        if (r->kind == K_PY) {
            /* a run of such lines: one call */
            size_t j = i;
            Py_ssize_t b;
            PyObject *res;
            while (j + 1 < p->n && p->recs[j + 1].kind == K_PY) j++;
            b = p->recs[j].end < stop ? p->recs[j].end + 1 : stop;
            if (runs) {
                res = PyObject_CallFunction(fallback, "y#n", runs + at, b - r->off,
                                            base + r->off);
                at += (size_t)(b - r->off);
            } else {
                res = PyObject_CallFunction(fallback, "nn", r->off, b);
            }
            if (!res) failed = 1;
            Py_XDECREF(res);
            i = j;
        } else if (r->kind == K_USAGE) {
            if (put_row(p, r, base, source, best, strings, text, memos, &c, pr, ts_min, ts_max,
                        poison) < 0)
                failed = 1;
        } else if (r->kind == K_TITLE) {
            if (title) {
                if (put_title(p, r, title) < 0) failed = 1;
            } else {
                PyObject *res = PyObject_CallFunction(
                    fallback, "nn", r->off, r->end < stop ? r->end + 1 : stop);
                if (!res) failed = 1;
                Py_XDECREF(res);
            }
        }
    }
    for (i = 0; i < 3; i++) {
        free(memos[i].raw);
        Py_XDECREF(memos[i].shown);
    }
    Py_XDECREF(c.empty);
    Py_XDECREF(c.unknown);
    Py_XDECREF(c.zero);
    return failed ? -1 : 0;
}

PyDoc_STRVAR(scan_doc,
"scan(buf, start, stop, base, source, best, strings, text, fallback, max_tokens, ts_min,\n"
"     ts_max[, price[, fp_end[, fd, size[, path[, title]]]]]) -> int | (int, str) |\n"
"     (int, int, str) | None\n\n"
"The complete lines of buf[start:stop]: usage rows into ``best``, the lines C leaves to\n"
"Python through ``fallback(a, b)`` (lines buf[a:b], in order); returns the number of\n"
"poison usage lines (to count as malformed). ``price`` (RowPricer.native or None): the\n"
"rows C builds are priced (the fallback's are not: Python prices them). ``fp_end`` > 0:\n"
"also reader.fingerprint's digest of a file whose first fp_end bytes are buf[:fp_end],\n"
"returned with the count. ``fd`` >= 0: the file open at fd is read into buf (writable,\n"
"start and base 0; ``stop`` ignored) and its complete lines scanned: (count, end,\n"
"fingerprint at end), or None when buf filled before the file's end (nothing parsed).\n"
"``path``: the file to open instead of ``fd``. ``title``: title(session id, type, title)\n"
"for each title line C reads (None: such lines go to fallback too).");

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, stop, base;
    PyObject *source, *best, *strings, *text, *fallback;
    long long max_tokens; /* "L", not "K": K takes any int modulo 2**64 */
    double ts_min, ts_max;
    pass1 p;
    yyjson_alc *alc;
    long long poison = 0;
    int failed = 0;
    PyObject *price = Py_None;
    pricing pr = {NULL, NULL, 0, 0, NULL, NULL};
    Py_ssize_t fp_end = -1;
    char fp[2 * FP_BYTES + 1];
    whole w = {-1, -1, 0, 0, 0};
    PyObject *path = Py_None; /* the file to open (str), and its name for the OS */
    PyObject *title = Py_None; /* None: title lines C read go to fallback, one by one */
    osname opened = NULL;
    int open_err = 0, whole_file;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnUO!O!OOLdd|OninOO:scan", &view, &start, &stop, &base,
                          &source, &PyDict_Type, &best, &PyDict_Type, &strings, &text,
                          &fallback, &max_tokens, &ts_min, &ts_max, &price, &fp_end, &w.fd,
                          &w.size, &path, &title))
        return NULL;
    if (path != Py_None && (w.fd >= 0 || !PyUnicode_Check(path))) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "scan: a path (str) or an fd, not both");
        return NULL;
    }
    whole_file = w.fd >= 0 || path != Py_None;
    if (fp_end == 0 || fp_end > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "scan: fp_end out of the buffer");
        return NULL;
    }
    if (whole_file && (view.readonly || start != 0 || base != 0)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "scan: a file is read into a writable buffer from 0");
        return NULL;
    }
    if (price != Py_None &&
        !PyArg_ParseTuple(price, "O!OpL:scan's price", &PyDict_Type, &pr.rates, &pr.resolve,
                          &pr.display, &pr.threshold)) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (start < 0 || stop > view.len || start > stop) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "scan: range out of the buffer");
        return NULL;
    }
    /* base + offset must not wrap (a row key's file offset), nor max_tokens be negative */
    if (base > PY_SSIZE_T_MAX - stop || max_tokens < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "scan: base or max_tokens out of range");
        return NULL;
    }
    memset(&p, 0, sizeof(p));
    p.prepass = prepass_enabled;
    p.filter = filter_enabled;
    if (path != Py_None) {
        opened = osname_of(path); /* (freed below) */
        if (!opened) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    if (!kit_take(&p, &alc)) {
        osname_free(opened);
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    {
        const char *buf = (const char *)view.buf;
        if (whole_file) { /* the file first: its complete lines are the range */
            if (opened) {
                stop = read_named(&w, opened, (char *)view.buf, view.len, &open_err);
            } else {
                read_whole(&w, (char *)view.buf, view.len);
                stop = lines_end(&w, buf);
            }
            if (!open_err) fp_end = stop > 0 ? stop : -1;
        }
        pass1_lines(&p, buf, start, stop, (uint64_t)max_tokens, alc);
        if (fp_end > 0) fp_hex((const unsigned char *)buf, (size_t)fp_end, fp);
    }
    Py_END_ALLOW_THREADS
    osname_free(opened);
    prepass_lines += p.fast;
    filtered_lines += p.filtered;
    usage_lines += p.fields;
    if (open_err) { /* as os.open raises it: FileNotFoundError, PermissionError, ... */
        errno = open_err;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        failed = 1;
        goto done;
    }
    if (w.err) {
        errno = w.err;
        PyErr_SetFromErrno(PyExc_OSError);
        failed = 1;
        goto done;
    }
    if (p.nomem) {
        PyErr_NoMemory();
        failed = 1;
        goto done;
    }
    if (pass2(&p, stop, NULL, base, source, best, strings, text, fallback,
              title == Py_None ? NULL : title, &pr, ts_min, ts_max, &poison) < 0)
        failed = 1;
done:
    Py_XDECREF(pr.model);
    Py_XDECREF(pr.got);
    kit_give(&p, alc);
    PyBuffer_Release(&view);
    if (failed) return NULL;
    if (whole_file) {
        if (w.full) Py_RETURN_NONE;
        return Py_BuildValue("Lns", poison, stop, stop > 0 ? fp : "");
    }
    if (fp_end > 0) return Py_BuildValue("Ls", poison, fp);
    return PyLong_FromLongLong(poison);
}


/* --- a worker's files parsed without the GIL, their rows built by the caller -------------
 *
 * parse_many(buf, paths, sizes, max_tokens): each file (from its start, smaller than buf)
 * opened, read into buf, its complete lines parsed (pass 1), fingerprinted and closed, all
 * the files in one stretch without the GIL; each file's records, their strings and a copy of
 * its lines for Python kept in a Parsed (one allocation). finish(parsed, ...) then builds its
 * rows (pass 2) on the thread that merges them. A scan thread that built its own rows took
 * the GIL back after every file while the calling thread held it for its own work (the
 * staging): in a cold scan it waited ~50 ms for it (docs/performance.md, fifteenth session). */
typedef struct {
    PyObject_HEAD
    char *block;       /* the records, the arena, the runs' bytes */
    pass1 p;           /* recs and arena point into block (n, used: their counts) */
    char *runs;        /* the lines for Python, each run copied, one after another */
    Py_ssize_t stop;   /* the complete lines' end */
    int open_err;      /* errno of the open */
    int err;           /* errno of a read */
    int full;          /* the buffer filled before the end (nothing parsed) */
    char fp[2 * FP_BYTES + 1];
} Parsed;

static void parsed_dealloc(PyObject *o) {
    free(((Parsed *)o)->block);
    PyObject_Free(o);
}

static PyTypeObject ParsedType = {
    PyVarObject_HEAD_INIT(NULL, 0) /* (a comma in the macro) */
    .tp_name = "tokmon._native._scan.Parsed",
    .tp_basicsize = sizeof(Parsed),
    .tp_dealloc = parsed_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One file's pass 1 (parse_many), for finish().",
};

/* one file's pass 1 result, before it becomes a Parsed (with the GIL) */
typedef struct {
    char *block;
    size_t n, used, nruns;
    Py_ssize_t stop;
    int open_err, err, full;
    char fp[2 * FP_BYTES + 1];
} parsed_raw;

/* the records of p, their strings and its runs of lines for Python (from buf) in one block:
 * a session id, cwd or model the same as the previous record's is kept once (a file's rows
 * mostly share them: they are held until the merging thread builds the rows) */
static int keep_parsed(const pass1 *p, const char *buf, Py_ssize_t stop, parsed_raw *out) {
    size_t i, k, nruns = 0, at, head = p->n * sizeof(rec);
    slice last[3];
    int have = 0;
    char *block, *arena, *grown;
    for (i = 0; i < p->n; i++)
        if (p->recs[i].kind == K_PY) {
            Py_ssize_t b = p->recs[i].end < stop ? p->recs[i].end + 1 : stop;
            nruns += (size_t)(b - p->recs[i].off);
        }
    block = (char *)malloc(head + p->used + nruns + 1);
    if (!block) return 0;
    if (head) memcpy(block, p->recs, head); /* (recs is NULL in a new kit: not memcpy's) */
    arena = block + head;
    at = 0;
    for (i = 0; i < p->n; i++) {
        rec *r = &((rec *)block)[i];
        slice *f[4];
        if (r->kind != K_USAGE && r->kind != K_TITLE) continue;
        f[0] = &r->sid;
        f[1] = &r->cwd;
        f[2] = &r->model;
        f[3] = &r->key;
        for (k = 0; k < 4; k++) {
            const char *src;
            size_t len = f[k]->len;
            if (len == 0) { /* (its pos is not set, and the arena may be NULL) */
                f[k]->pos = 0;
                if (k < 3) last[k] = *f[k];
                continue;
            }
            src = p->arena + f[k]->pos;
            if (k < 3 && have && last[k].len == len && memcmp(arena + last[k].pos, src, len) == 0) {
                f[k]->pos = last[k].pos;
                continue;
            }
            memcpy(arena + at, src, len);
            f[k]->pos = at;
            at += len;
            if (k < 3) last[k] = *f[k];
        }
        have = 1;
    }
    out->used = at;
    for (i = 0; i < p->n; i++)
        if (p->recs[i].kind == K_PY) {
            Py_ssize_t b = p->recs[i].end < stop ? p->recs[i].end + 1 : stop;
            memcpy(arena + at, buf + p->recs[i].off, (size_t)(b - p->recs[i].off));
            at += (size_t)(b - p->recs[i].off);
        }
    grown = (char *)realloc(block, head + at + 1); /* (smaller: the strings kept once) */
    out->block = grown ? grown : block;
    out->n = p->n;
    out->nruns = nruns;
    return 1;
}

static void free_names(osname *names, Py_ssize_t n) {
    Py_ssize_t i;
    for (i = 0; i < n; i++) osname_free(names[i]);
    PyMem_Free(names);
}

static PyObject *parse_many(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *paths, *sizes, *out = NULL;
    long long max_tokens;
    Py_ssize_t n, i;
    parsed_raw *raws;
    pass1 p;
    yyjson_alc *alc;
    int nomem = 0;
    osname *names;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*O!O!L:parse_many", &view, &PyList_Type, &paths, &PyList_Type,
                          &sizes, &max_tokens))
        return NULL;
    n = PyList_GET_SIZE(paths);
    if (PyList_GET_SIZE(sizes) != n || max_tokens < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "parse_many: as many sizes as paths, max_tokens >= 0");
        return NULL;
    }
    names = PyMem_Calloc((size_t)n + 1, sizeof(*names));
    raws = (parsed_raw *)PyMem_Calloc((size_t)n + 1, sizeof(parsed_raw));
    if (!names || !raws) {
        PyMem_Free(names);
        PyMem_Free(raws);
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    for (i = 0; i < n; i++) {
        PyObject *path = PyList_GET_ITEM(paths, i), *size = PyList_GET_ITEM(sizes, i);
        if (!PyUnicode_Check(path)) {
            PyErr_SetString(PyExc_TypeError, "parse_many: paths are str");
            goto fail;
        }
        raws[i].stop = PyLong_AsSsize_t(size); /* (the stat's size until the read) */
        if (raws[i].stop == -1 && PyErr_Occurred()) goto fail;
        names[i] = osname_of(path);
        if (!names[i]) goto fail;
    }
    memset(&p, 0, sizeof(p));
    p.prepass = prepass_enabled;
    p.filter = filter_enabled;
    if (!kit_take(&p, &alc)) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    {
        char *buf = (char *)view.buf;
        for (i = 0; i < n && !nomem; i++) {
            parsed_raw *r = &raws[i];
            whole w = {-1, -1, 0, 0, 0};
            Py_ssize_t stop;
            w.size = r->stop;
            stop = read_named(&w, names[i], buf, view.len, &r->open_err);
            r->err = w.err;
            r->full = w.full;
            r->stop = stop;
            p.n = 0;
            p.used = 0;
            pass1_lines(&p, buf, 0, stop, (uint64_t)max_tokens, alc);
            if (p.nomem || !keep_parsed(&p, buf, stop, r)) {
                nomem = 1;
                break;
            }
            if (stop > 0) fp_hex((const unsigned char *)buf, (size_t)stop, r->fp);
        }
    }
    Py_END_ALLOW_THREADS
    prepass_lines += p.fast;
    filtered_lines += p.filtered;
    usage_lines += p.fields;
    kit_give(&p, alc);
    if (nomem) {
        PyErr_NoMemory();
        goto fail;
    }
    out = PyList_New(n);
    if (!out) goto fail;
    for (i = 0; i < n; i++) {
        parsed_raw *r = &raws[i];
        Parsed *o = PyObject_New(Parsed, &ParsedType);
        if (!o) {
            Py_CLEAR(out);
            goto fail;
        }
        memset(&o->p, 0, sizeof(o->p));
        o->block = r->block;
        r->block = NULL;
        o->p.recs = (rec *)o->block;
        o->p.n = r->n;
        o->p.arena = o->block + r->n * sizeof(rec);
        o->p.used = r->used;
        o->runs = o->p.arena + r->used;
        o->stop = r->stop;
        o->open_err = r->open_err;
        o->err = r->err;
        o->full = r->full;
        memcpy(o->fp, r->fp, sizeof(o->fp));
        PyList_SET_ITEM(out, i, (PyObject *)o);
    }
fail:
    for (i = 0; i < n; i++) free(raws[i].block);
    PyMem_Free(raws);
    free_names(names, n);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *finish(PyObject *self, PyObject *args) {
    Parsed *o;
    PyObject *source, *best, *strings, *text, *fallback, *title, *price = Py_None;
    double ts_min, ts_max;
    long long poison = 0;
    pricing pr = {NULL, NULL, 0, 0, NULL, NULL};
    int failed;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!UO!O!OOOdd|O:finish", &ParsedType, &o, &source,
                          &PyDict_Type, &best, &PyDict_Type, &strings, &text, &fallback, &title,
                          &ts_min, &ts_max, &price))
        return NULL;
    if (o->open_err) { /* as os.open raises it: FileNotFoundError, PermissionError, ... */
        errno = o->open_err;
        return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, source);
    }
    if (o->err) {
        errno = o->err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (o->full) Py_RETURN_NONE;
    if (price != Py_None &&
        !PyArg_ParseTuple(price, "O!OpL:finish's price", &PyDict_Type, &pr.rates, &pr.resolve,
                          &pr.display, &pr.threshold))
        return NULL;
    failed = pass2(&o->p, o->stop, o->runs, 0, source, best, strings, text, fallback, title,
                   &pr, ts_min, ts_max, &poison) < 0;
    Py_XDECREF(pr.model);
    Py_XDECREF(pr.got);
    if (failed) return NULL;
    return Py_BuildValue("Lns", poison, o->stop, o->stop > 0 ? o->fp : "");
}


/* --- a batch of staged rows as one INSERT's parameters (ledger.Stage._flush) ------------- */
static PyObject *t_batch_args(PyObject *self, PyObject *args) {
    PyObject *rows, *out;
    Py_ssize_t start, k, i, j, at = 0, width;
    int nulls = 1;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!nn:batch_args", &PyList_Type, &rows, &start, &k)) return NULL;
    if (start < 0 || k < 0 || start > PyList_GET_SIZE(rows) - k) {
        PyErr_SetString(PyExc_ValueError, "batch_args: rows[start:start + k] out of the list");
        return NULL;
    }
    for (i = start; i < start + k; i++) {
        PyObject *r = PyList_GET_ITEM(rows, i);
        if (!PyList_CheckExact(r) || PyList_GET_SIZE(r) != 12) Py_RETURN_NONE;
        if (PyList_GET_ITEM(r, 11) != Py_None) nulls = 0;
    }
    width = nulls ? 11 : 12;
    out = PyList_New(k * width);
    if (!out) return NULL;
    for (i = start; i < start + k; i++) {
        PyObject *r = PyList_GET_ITEM(rows, i);
        for (j = 0; j < width; j++) {
            PyObject *v = PyList_GET_ITEM(r, j);
            Py_INCREF(v);
            PyList_SET_ITEM(out, at++, v);
        }
    }
    return Py_BuildValue("(NO)", out, nulls ? Py_True : Py_False);
}

static PyObject *t_fingerprint(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t end;
    char fp[2 * FP_BYTES + 1];
    (void)self;
    if (!PyArg_ParseTuple(args, "y*n:_fingerprint", &view, &end)) return NULL;
    if (end <= 0 || end > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "_fingerprint: end out of the buffer");
        return NULL;
    }
    fp_hex((const unsigned char *)view.buf, (size_t)end, fp);
    PyBuffer_Release(&view);
    return PyUnicode_FromString(fp);
}

/* Whether yyjson rejects ``data`` as JSON, read as orjson reads (strict RFC 8259, UTF-8
 * checked): orjson, which parses with yyjson, rejects it too, so parser.parse_line counts
 * such a line as bad without importing orjson. False for what yyjson accepts (orjson decides
 * those: e.g. nesting past its 1024 levels). */
static PyObject *t_rejects(PyObject *self, PyObject *arg) {
    Py_buffer view;
    yyjson_doc *doc;
    yyjson_read_err err;
    (void)self;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    doc = yyjson_read_opts((char *)view.buf, (size_t)view.len, 0, NULL, &err);
    PyBuffer_Release(&view);
    if (doc) {
        yyjson_doc_free(doc);
        Py_RETURN_FALSE;
    }
    if (err.code == YYJSON_READ_ERROR_MEMORY_ALLOCATION) return PyErr_NoMemory();
    Py_RETURN_TRUE;
}

static PyObject *t_trim(PyObject *self, PyObject *args) {
    int n = nkits;
    (void)self;
    (void)args;
    while (nkits > 0) kit_free(&kits[--nkits]);
    return PyLong_FromLong(n);
}

/* --- a file's rows summed per cell, for the cold build's stored sums (ledger.Stage) ------- */

/* tokmon.core.rollups' SQL, per row: the 15-minute bucket and the cost in picodollars (the
 * same float operations in the same order: see _BUCKET_SQL and _PICO_SQL) */
#define CELL_SECONDS 900

static int cell_pico(double cost, long long *out) {
    volatile double p = cost * 1000000000000.0;
    volatile double d;
    long long t;
    double ad;
    if (!(p > -9.0e18 && p < 9.0e18)) return 0; /* (also NaN): SQLite would saturate */
    t = (long long)p;
    d = p - (double)t;
    ad = fabs(d);
    if (ad < 0.5)
        *out = t;
    else if (ad > 0.5)
        *out = t + (d > 0) - (d < 0);
    else
        *out = t + t % 2; /* a tie to the even side (C's % keeps the dividend's sign, as SQL) */
    return 1;
}

static int cell_bucket(double ts, long long *out) {
    volatile double q = ts / CELL_SECONDS;
    long long b;
    if (!(ts >= 0.0 && q < 9.0e15)) return 0;
    b = (long long)q;
    *out = b - ((double)(b * CELL_SECONDS) > ts);
    return 1;
}

static int add_ll(long long *acc, long long v) {
    if (v > 0 ? *acc > LLONG_MAX - v : *acc < LLONG_MIN - v) return 0;
    *acc += v;
    return 1;
}

/* FNV-1a, 32 bits, of the key's UTF-8: equal keys in the rows of one run hash alike */
static uint32_t key_hash(const char *s, Py_ssize_t n) {
    uint32_t h = 2166136261u;
    Py_ssize_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* --- every row summed into its cell as the rows come, for a cold build (ledger.Stage) ------ */

/* CellSums: the cells of every row added (keyed by the values of bucket, model, session and
 * project, not by their objects); finish() takes the rows the build's dedup deleted back out
 * (their counts and strings from the records, their times and costs from what add() gave)
 * and gives the cells of the records, as tokmon.core.rollups' SQL sums them: a cell whose
 * first or last time was a deleted row's is named for the caller to read again. */
typedef struct {
    long long bucket;
    PyObject *model, *session, *project; /* owned */
    long long sums[7];                   /* input, output, cc, c1h, cr, pico, rows */
    double first, last;
} gcell_t;

/* a row of a table derived from the cells (derive()): its key strings borrowed from them */
typedef struct {
    long long bucket;
    PyObject *a, *b, *p; /* model | session, model | session (p: its project) | project */
    long long sums[7];
    double first, last, pts;
} drow_t;

#define DERIVED 5 /* rollup_project, rollup_bucket, rollup_total, rollup_session_model,
                     rollup_session */
struct drows {
    drow_t *rows[DERIVED];
    size_t n[DERIVED];
};

typedef struct {
    PyObject_HEAD
    gcell_t *cells;
    size_t ncells, capcells;
    Py_ssize_t *slot;
    size_t cap;   /* slots: a power of two, at least twice the cells */
    size_t nrows; /* rows added */
    size_t *kept; /* finish(): the cells kept, in key order */
    size_t nkept;
    struct drows *derived; /* derive(): the other stored sums, per table */
    int unfit;
} CellSumsObject;

static void cellsums_free(CellSumsObject *o) {
    size_t i;
    for (i = 0; i < o->ncells; i++) {
        Py_XDECREF(o->cells[i].model);
        Py_XDECREF(o->cells[i].session);
        Py_XDECREF(o->cells[i].project);
    }
    PyMem_Free(o->cells);
    PyMem_Free(o->slot);
    PyMem_Free(o->kept);
    if (o->derived != NULL) {
        int t;
        for (t = 0; t < DERIVED; t++) PyMem_Free(o->derived->rows[t]);
        PyMem_Free(o->derived);
    }
    o->derived = NULL;
    o->cells = NULL;
    o->slot = NULL;
    o->kept = NULL;
    o->ncells = o->capcells = o->cap = o->nkept = 0;
}

static void cellsums_dealloc(PyObject *self) {
    cellsums_free((CellSumsObject *)self);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *cellsums_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    if (PyTuple_GET_SIZE(args) != 0 || (kw != NULL && PyDict_GET_SIZE(kw) != 0)) {
        PyErr_SetString(PyExc_TypeError, "CellSums() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0);
}

static int same_str(PyObject *a, PyObject *b) {
    return a == b || PyUnicode_Compare(a, b) == 0; /* (both exact str: no error) */
}

/* the hash of a cell's key (its strings' own hashes: cached in them) */
static size_t gcell_hash(long long bucket, PyObject *model, PyObject *session, PyObject *project) {
    size_t h = (size_t)bucket * 0x9E3779B97F4A7C15ull;
    h = (h ^ (size_t)PyObject_Hash(model)) * 0x100000001B3ull;
    h = (h ^ (size_t)PyObject_Hash(session)) * 0x100000001B3ull;
    h = (h ^ (size_t)PyObject_Hash(project)) * 0x100000001B3ull;
    return h ^ (h >> 29);
}

/* the cell of this key (created, zero, when create and there is none: -2 when out of
 * memory), or -1 */
static Py_ssize_t gcell_find(CellSumsObject *o, long long bucket, PyObject *model,
                             PyObject *session, PyObject *project, int create) {
    size_t h, i;
    if (create && (o->ncells >= o->capcells || (o->ncells + 1) * 2 > o->cap)) {
        if (o->ncells >= o->capcells) { /* (grown by half: less slack held than doubling) */
            size_t want = o->capcells ? o->capcells + o->capcells / 2 : 1024;
            gcell_t *cells = (gcell_t *)PyMem_Realloc(o->cells, want * sizeof *cells);
            if (cells == NULL) return -2;
            o->cells = cells;
            o->capcells = want;
        }
        if ((o->ncells + 1) * 2 > o->cap) {
            size_t cap = o->cap ? o->cap * 2 : 2048;
            Py_ssize_t *slot = (Py_ssize_t *)PyMem_Malloc(cap * sizeof *slot);
            if (slot == NULL) return -2;
            memset(slot, 0xff, cap * sizeof *slot);
            for (i = 0; i < o->ncells; i++) {
                const gcell_t *c = &o->cells[i];
                size_t k = gcell_hash(c->bucket, c->model, c->session, c->project) & (cap - 1);
                while (slot[k] >= 0) k = (k + 1) & (cap - 1);
                slot[k] = (Py_ssize_t)i;
            }
            PyMem_Free(o->slot);
            o->slot = slot;
            o->cap = cap;
        }
    }
    if (o->cap == 0) return -1;
    h = gcell_hash(bucket, model, session, project) & (o->cap - 1);
    for (;;) {
        Py_ssize_t c = o->slot[h];
        gcell_t *cl;
        if (c < 0) {
            if (!create) return -1;
            c = (Py_ssize_t)o->ncells++;
            o->slot[h] = c;
            cl = &o->cells[c];
            cl->bucket = bucket;
            cl->model = Py_NewRef(model);
            cl->session = Py_NewRef(session);
            cl->project = Py_NewRef(project);
            memset(cl->sums, 0, sizeof cl->sums);
            cl->first = HUGE_VAL;
            cl->last = -HUGE_VAL;
            return c;
        }
        cl = &o->cells[c];
        if (cl->bucket == bucket && same_str(cl->model, model) && same_str(cl->session, session) &&
            same_str(cl->project, project))
            return c;
        h = (h + 1) & (o->cap - 1);
    }
}

static PyObject *cellsums_add(PyObject *self, PyObject *rows) {
    CellSumsObject *o = (CellSumsObject *)self;
    Py_ssize_t n, i, last = -1;
    PyObject *hashes = NULL, *times = NULL, *out = NULL;
    uint32_t *hp;
    char *tp;
    if (!PyList_Check(rows)) {
        PyErr_SetString(PyExc_TypeError, "CellSums.add: a list of rows");
        return NULL;
    }
    if (o->unfit) Py_RETURN_NONE;
    n = PyList_GET_SIZE(rows);
    hashes = PyBytes_FromStringAndSize(NULL, n * 4);
    times = PyBytes_FromStringAndSize(NULL, n * 16);
    if (hashes == NULL || times == NULL) goto done;
    hp = (uint32_t *)PyBytes_AS_STRING(hashes);
    tp = PyBytes_AS_STRING(times);
    for (i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i), **f;
        long long v[7], bucket;
        double ts, cost;
        const char *key;
        Py_ssize_t klen, c;
        int k, overflow;
        gcell_t *cl;
        if (!PyList_Check(row) || PyList_GET_SIZE(row) < 11) goto unfit;
        f = ((PyListObject *)row)->ob_item;
        if (!(PyFloat_CheckExact(f[0]) || PyLong_CheckExact(f[0])) ||
            !(PyFloat_CheckExact(f[10]) || PyLong_CheckExact(f[10])) ||
            !PyUnicode_CheckExact(f[1]) || !PyUnicode_CheckExact(f[2]) ||
            !PyUnicode_CheckExact(f[3]) || !PyUnicode_CheckExact(f[9]))
            goto unfit;
        ts = PyFloat_AsDouble(f[0]);
        cost = PyFloat_AsDouble(f[10]);
        if (PyErr_Occurred()) goto unfit;
        for (k = 0; k < 5; k++) {
            if (!PyLong_CheckExact(f[4 + k])) goto unfit;
            v[k] = PyLong_AsLongLongAndOverflow(f[4 + k], &overflow);
            if (overflow || (v[k] == -1 && PyErr_Occurred())) goto unfit;
        }
        if (!cell_pico(cost, &v[5]) || !cell_bucket(ts, &bucket)) goto unfit;
        v[6] = 1;
        key = PyUnicode_AsUTF8AndSize(f[9], &klen);
        if (key == NULL) goto unfit;
        hp[i] = key_hash(key, klen);
        memcpy(tp + 16 * i, &ts, 8);
        memcpy(tp + 16 * i + 8, &cost, 8);
        if (last >= 0 && o->cells[last].bucket == bucket && o->cells[last].model == f[3] &&
            o->cells[last].session == f[1] && o->cells[last].project == f[2]) {
            c = last;
        } else {
            c = gcell_find(o, bucket, f[3], f[1], f[2], 1);
            if (c == -2) {
                PyErr_NoMemory();
                goto done;
            }
            last = c;
        }
        cl = &o->cells[c];
        for (k = 0; k < 7; k++)
            if (!add_ll(&cl->sums[k], v[k])) goto unfit;
        if (ts < cl->first) cl->first = ts;
        if (ts > cl->last) cl->last = ts;
    }
    o->nrows += (size_t)n;
    out = PyTuple_Pack(2, hashes, times);
    goto done;
unfit: /* a row these sums cannot take: none from now on (the caller sums in SQL) */
    PyErr_Clear();
    o->unfit = 1;
    cellsums_free(o);
    out = Py_NewRef(Py_None);
done:
    Py_XDECREF(hashes);
    Py_XDECREF(times);
    return out;
}

/* the cells in the stored sums' key order: bucket, then model, session and project as
 * SQLite's BINARY collation orders their UTF-8 (code points: as str compares) */
static const gcell_t *sorting; /* (the GIL is held throughout the sort) */

static int cmp_gcell(const void *a, const void *b) {
    const gcell_t *x = &sorting[*(const size_t *)a], *y = &sorting[*(const size_t *)b];
    int c;
    if (x->bucket != y->bucket) return x->bucket < y->bucket ? -1 : 1;
    if ((c = PyUnicode_Compare(x->model, y->model)) != 0) return c;
    if ((c = PyUnicode_Compare(x->session, y->session)) != 0) return c;
    return PyUnicode_Compare(x->project, y->project);
}

static PyObject *cellsums_finish(PyObject *self, PyObject *args) {
    CellSumsObject *o = (CellSumsObject *)self;
    PyObject *gone, *seq = NULL, *marked = NULL, *out = NULL;
    Py_buffer times;
    unsigned char *mark = NULL;
    Py_ssize_t ng, j;
    size_t i;
    int bad = 0;
    if (!PyArg_ParseTuple(args, "Oy*:finish", &gone, &times)) return NULL;
    if (o->unfit || times.len % 16 || (size_t)times.len / 16 != o->nrows) {
        bad = 1;
        goto done;
    }
    seq = PySequence_Fast(gone, "finish: a sequence of gone rows");
    if (seq == NULL) goto done;
    ng = PySequence_Fast_GET_SIZE(seq);
    mark = (unsigned char *)PyMem_Calloc(o->ncells ? o->ncells : 1, 1);
    if (mark == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* (rowid, input, output, cc, c1h, cr, session, project, model) */
    for (j = 0; j < ng; j++) {
        PyObject *g = PySequence_Fast_GET_ITEM(seq, j), **f;
        long long rowid, v[7], bucket;
        double ts, cost;
        Py_ssize_t c;
        gcell_t *cl;
        int k;
        if (!PyTuple_Check(g) || PyTuple_GET_SIZE(g) != 9) {
            bad = 1;
            goto done;
        }
        f = ((PyTupleObject *)g)->ob_item;
        if (!PyUnicode_CheckExact(f[6]) || !PyUnicode_CheckExact(f[7]) ||
            !PyUnicode_CheckExact(f[8])) {
            bad = 1;
            goto done;
        }
        rowid = PyLong_AsLongLong(f[0]);
        for (k = 0; k < 5; k++) v[k] = PyLong_AsLongLong(f[k + 1]);
        if (PyErr_Occurred()) goto done;
        if (rowid < 1 || (size_t)rowid > o->nrows) {
            bad = 1;
            goto done;
        }
        memcpy(&ts, (const char *)times.buf + 16 * (size_t)(rowid - 1), 8);
        memcpy(&cost, (const char *)times.buf + 16 * (size_t)(rowid - 1) + 8, 8);
        v[6] = 1;
        if (!cell_pico(cost, &v[5]) || !cell_bucket(ts, &bucket)) {
            bad = 1;
            goto done;
        }
        c = gcell_find(o, bucket, f[8], f[6], f[7], 0);
        if (c < 0) {
            bad = 1;
            goto done;
        }
        cl = &o->cells[c];
        for (k = 0; k < 7; k++)
            if (v[k] == LLONG_MIN || !add_ll(&cl->sums[k], -v[k])) {
                bad = 1;
                goto done;
            }
        if (ts == cl->first || ts == cl->last) mark[c] = 1;
    }
    PyMem_Free(o->kept);
    o->nkept = 0;
    o->kept = (size_t *)PyMem_Malloc((o->ncells ? o->ncells : 1) * sizeof(size_t));
    marked = PyList_New(0);
    if (o->kept == NULL || marked == NULL) {
        if (o->kept == NULL) PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < o->ncells; i++) {
        gcell_t *cl = &o->cells[i];
        int k;
        if (cl->sums[6] < 0) {
            bad = 1;
            goto done;
        }
        if (cl->sums[6] == 0) { /* every row of it deleted: no cell (and nothing left) */
            for (k = 0; k < 6; k++)
                if (cl->sums[k] != 0) bad = 1;
            if (bad) goto done;
            continue;
        }
        if (mark[i]) { /* its first or last time gone with a row: the caller's to read */
            PyObject *t = Py_BuildValue("(nLOOO)", (Py_ssize_t)i, cl->bucket, cl->model,
                                        cl->session, cl->project);
            if (t == NULL || PyList_Append(marked, t) < 0) {
                Py_XDECREF(t);
                goto done;
            }
            Py_DECREF(t);
            cl->first = HUGE_VAL; /* (until set_times) */
            cl->last = -HUGE_VAL;
        }
        o->kept[o->nkept++] = i;
    }
    sorting = o->cells;
    qsort(o->kept, o->nkept, sizeof(size_t), cmp_gcell);
    sorting = NULL;
    out = Py_BuildValue("(nO)", (Py_ssize_t)o->nkept, marked);
done:
    PyBuffer_Release(&times);
    Py_XDECREF(seq);
    Py_XDECREF(marked);
    PyMem_Free(mark);
    if (bad && !PyErr_Occurred()) { /* not the sums of these rows: the caller sums in SQL */
        Py_XDECREF(out);
        o->unfit = 1;
        cellsums_free(o);
        Py_RETURN_NONE;
    }
    if (PyErr_Occurred()) {
        Py_XDECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *cellsums_set_times(PyObject *self, PyObject *args) {
    CellSumsObject *o = (CellSumsObject *)self;
    Py_ssize_t i;
    double first, last;
    if (!PyArg_ParseTuple(args, "ndd:set_times", &i, &first, &last)) return NULL;
    if (o->kept == NULL || i < 0 || (size_t)i >= o->ncells || o->cells[i].sums[6] <= 0) {
        PyErr_SetString(PyExc_ValueError, "set_times: not a cell finish() kept");
        return NULL;
    }
    o->cells[i].first = first;
    o->cells[i].last = last;
    Py_RETURN_NONE;
}

static PyObject *cellsums_args(PyObject *self, PyObject *args) {
    CellSumsObject *o = (CellSumsObject *)self;
    PyObject *agent, *list;
    Py_ssize_t start, k, i, at = 0;
    if (!PyArg_ParseTuple(args, "Unn:args", &agent, &start, &k)) return NULL;
    if (o->kept == NULL || start < 0 || k < 0 || (size_t)start > o->nkept ||
        (size_t)k > o->nkept - (size_t)start) {
        PyErr_SetString(PyExc_ValueError, "args: not cells finish() kept");
        return NULL;
    }
    list = PyList_New(14 * k);
    if (list == NULL) return NULL;
    for (i = 0; i < k; i++) {
        const gcell_t *cl = &o->cells[o->kept[start + i]];
        PyObject *v[14];
        int j;
        v[0] = Py_NewRef(agent);
        v[1] = PyLong_FromLongLong(cl->bucket);
        v[2] = Py_NewRef(cl->model);
        v[3] = Py_NewRef(cl->session);
        v[4] = Py_NewRef(cl->project);
        for (j = 0; j < 7; j++) v[5 + j] = PyLong_FromLongLong(cl->sums[j]);
        v[12] = PyFloat_FromDouble(cl->first);
        v[13] = PyFloat_FromDouble(cl->last);
        for (j = 0; j < 14; j++) {
            if (v[j] == NULL) {
                int m;
                for (m = j + 1; m < 14; m++) Py_XDECREF(v[m]);
                Py_DECREF(list); /* (the items set so far with it) */
                return NULL;
            }
            PyList_SET_ITEM(list, at++, v[j]);
        }
    }
    return list;
}

/* derive(): the orders of the kept cells the other tables group them in */
static int cmp_str(PyObject *a, PyObject *b) { return a == b ? 0 : PyUnicode_Compare(a, b); }

static int cmp_by_model(const void *a, const void *b) {
    const gcell_t *x = &sorting[*(const size_t *)a], *y = &sorting[*(const size_t *)b];
    return cmp_str(x->model, y->model);
}

static int cmp_by_project(const void *a, const void *b) {
    const gcell_t *x = &sorting[*(const size_t *)a], *y = &sorting[*(const size_t *)b];
    return cmp_str(x->project, y->project);
}

static int cmp_by_session_model(const void *a, const void *b) {
    const gcell_t *x = &sorting[*(const size_t *)a], *y = &sorting[*(const size_t *)b];
    int c = cmp_str(x->session, y->session);
    return c ? c : cmp_str(x->model, y->model);
}

static int cmp_by_session_project(const void *a, const void *b) {
    const gcell_t *x = &sorting[*(const size_t *)a], *y = &sorting[*(const size_t *)b];
    int c = cmp_str(x->session, y->session);
    return c ? c : cmp_str(x->project, y->project);
}

/* a cell into a derived row: sums added (0: past 64 bits), first/last min/max */
static int drow_add(drow_t *r, const gcell_t *c, int fresh) {
    int k;
    if (fresh) {
        memset(r->sums, 0, sizeof r->sums);
        r->first = c->first;
        r->last = c->last;
    }
    for (k = 0; k < 7; k++)
        if (!add_ll(&r->sums[k], c->sums[k])) return 0;
    if (c->first < r->first) r->first = c->first;
    if (c->last > r->last) r->last = c->last;
    return 1;
}

/* rows of table t grouped from the cells in order ix (n of them): a new row where same()
 * says the cell is not of the previous one's group */
static int group_rows(CellSumsObject *o, int t, const size_t *ix, size_t n,
                      int (*same)(const gcell_t *, const gcell_t *)) {
    drow_t *rows = (drow_t *)PyMem_Malloc((n ? n : 1) * sizeof *rows);
    size_t i, m = 0;
    if (rows == NULL) return -1;
    o->derived->rows[t] = rows;
    for (i = 0; i < n; i++) {
        const gcell_t *c = &o->cells[ix[i]];
        int fresh = i == 0 || !same(&o->cells[ix[i - 1]], c);
        drow_t *r;
        if (fresh) {
            r = &rows[m++];
            r->bucket = c->bucket;
            r->a = c->model;
            r->b = c->session;
            r->p = c->project;
            r->pts = 0.0;
        } else {
            r = &rows[m - 1];
        }
        if (!drow_add(r, c, fresh)) return 0;
    }
    o->derived->n[t] = m;
    return 1;
}

static int same_bucket_model(const gcell_t *x, const gcell_t *y) {
    return x->bucket == y->bucket && cmp_str(x->model, y->model) == 0;
}
static int same_model(const gcell_t *x, const gcell_t *y) { return cmp_str(x->model, y->model) == 0; }
static int same_project(const gcell_t *x, const gcell_t *y) {
    return cmp_str(x->project, y->project) == 0;
}
static int same_session_model(const gcell_t *x, const gcell_t *y) {
    return cmp_str(x->session, y->session) == 0 && cmp_str(x->model, y->model) == 0;
}

static PyObject *cellsums_derive(PyObject *self, PyObject *unused) {
    CellSumsObject *o = (CellSumsObject *)self;
    size_t *ix = NULL, n = o->nkept, i, j, m;
    drow_t *sess = NULL;
    int ok = 1, got;
    (void)unused;
    if (o->kept == NULL || o->derived != NULL) {
        PyErr_SetString(PyExc_ValueError, "derive: once, after finish()");
        return NULL;
    }
    for (i = 0; i < n; i++)
        if (o->cells[o->kept[i]].first > o->cells[o->kept[i]].last) { /* (a set_times missing) */
            PyErr_SetString(PyExc_ValueError, "derive: a cell without its times");
            return NULL;
        }
    o->derived = (struct drows *)PyMem_Calloc(1, sizeof *o->derived);
    ix = (size_t *)PyMem_Malloc((n ? n : 1) * sizeof *ix);
    if (o->derived == NULL || ix == NULL) {
        PyMem_Free(ix);
        return PyErr_NoMemory();
    }
    /* rollup_bucket: the cells' own order (bucket, model, ...) */
    got = group_rows(o, 1, o->kept, n, same_bucket_model);
    if (got < 0) goto nomem;
    ok &= got;
    sorting = o->cells;
    memcpy(ix, o->kept, n * sizeof *ix);
    qsort(ix, n, sizeof *ix, cmp_by_project); /* rollup_project */
    got = group_rows(o, 0, ix, n, same_project);
    if (got < 0) goto nomem;
    ok &= got;
    qsort(ix, n, sizeof *ix, cmp_by_model); /* rollup_total */
    got = group_rows(o, 2, ix, n, same_model);
    if (got < 0) goto nomem;
    ok &= got;
    qsort(ix, n, sizeof *ix, cmp_by_session_model); /* rollup_session_model */
    got = group_rows(o, 3, ix, n, same_session_model);
    if (got < 0) goto nomem;
    ok &= got;
    /* rollup_session: first and last of its session-model rows; its project the one of its
     * cells (project not '') with the latest last time, ties to the larger project */
    {
        const drow_t *sm = o->derived->rows[3];
        size_t nsm = o->derived->n[3];
        sess = (drow_t *)PyMem_Malloc((nsm ? nsm : 1) * sizeof *sess);
        if (sess == NULL) goto nomem;
        o->derived->rows[4] = sess;
        for (i = 0, m = 0; i < nsm; i++) {
            if (m && cmp_str(sess[m - 1].b, sm[i].b) == 0) {
                if (sm[i].first < sess[m - 1].first) sess[m - 1].first = sm[i].first;
                if (sm[i].last > sess[m - 1].last) sess[m - 1].last = sm[i].last;
                continue;
            }
            sess[m].b = sm[i].b;
            sess[m].a = sess[m].p = NULL;
            sess[m].first = sm[i].first;
            sess[m].last = sm[i].last;
            sess[m].pts = 0.0;
            m++;
        }
        o->derived->n[4] = m;
        qsort(ix, n, sizeof *ix, cmp_by_session_project);
        for (i = 0, j = 0; i < n; i = j) { /* a (session, project) group: its latest last */
            const gcell_t *c = &o->cells[ix[i]];
            double t = c->last;
            for (j = i + 1; j < n && cmp_str(o->cells[ix[j]].session, c->session) == 0 &&
                            cmp_str(o->cells[ix[j]].project, c->project) == 0;
                 j++)
                if (o->cells[ix[j]].last > t) t = o->cells[ix[j]].last;
            if (PyUnicode_GET_LENGTH(c->project) == 0) continue;
            {
                /* the session's row: sessions are in the same order as the groups */
                size_t lo = 0, hi = m;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (cmp_str(sess[mid].b, c->session) < 0)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                if (lo >= m || cmp_str(sess[lo].b, c->session) != 0) {
                    PyErr_SetString(PyExc_RuntimeError, "derive: a session without its row");
                    goto fail;
                }
                /* (ascending projects: a later one of an equal time is the larger) */
                if (sess[lo].p == NULL || t >= sess[lo].pts) {
                    sess[lo].p = c->project;
                    sess[lo].pts = t;
                }
            }
        }
    }
    PyMem_Free(ix);
    sorting = NULL;
    return PyBool_FromLong(ok);
nomem:
    PyErr_NoMemory();
fail:
    PyMem_Free(ix);
    sorting = NULL;
    return NULL;
}

static const char *const derived_names[DERIVED] = {
    "rollup_project", "rollup_bucket", "rollup_total", "rollup_session_model", "rollup_session",
};
static const int derived_width[DERIVED] = {3, 12, 11, 12, 6};

static int derived_table(PyObject *name) {
    int t;
    for (t = 0; t < DERIVED; t++)
        if (PyUnicode_CompareWithASCIIString(name, derived_names[t]) == 0) return t;
    PyErr_SetString(PyExc_ValueError, "not a table derive() makes");
    return -1;
}

static PyObject *cellsums_count(PyObject *self, PyObject *name) {
    CellSumsObject *o = (CellSumsObject *)self;
    int t;
    if (!PyUnicode_Check(name) || (t = derived_table(name)) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "count: a table's name");
        return NULL;
    }
    if (o->derived == NULL) {
        PyErr_SetString(PyExc_ValueError, "count: after derive()");
        return NULL;
    }
    return PyLong_FromSize_t(o->derived->n[t]);
}

static PyObject *cellsums_table_args(PyObject *self, PyObject *args) {
    CellSumsObject *o = (CellSumsObject *)self;
    PyObject *name, *agent, *list, *empty = NULL;
    Py_ssize_t start, k, i, at = 0;
    int t, w;
    if (!PyArg_ParseTuple(args, "UUnn:table_args", &name, &agent, &start, &k)) return NULL;
    if ((t = derived_table(name)) < 0) return NULL;
    w = derived_width[t];
    if (o->derived == NULL || start < 0 || k < 0 || (size_t)start > o->derived->n[t] ||
        (size_t)k > o->derived->n[t] - (size_t)start) {
        PyErr_SetString(PyExc_ValueError, "table_args: not rows derive() made");
        return NULL;
    }
    list = PyList_New(w * k);
    if (list == NULL) return NULL;
    for (i = 0; i < k; i++) {
        const drow_t *r = &o->derived->rows[t][start + i];
        PyObject *v[12];
        int j, nv = 0;
        v[nv++] = Py_NewRef(agent);
        switch (t) {
        case 0: /* project, n */
            v[nv++] = Py_NewRef(r->p);
            v[nv++] = PyLong_FromLongLong(r->sums[6]);
            break;
        case 4: /* session, project, project_ts, first, last */
            if (r->p == NULL && empty == NULL) empty = PyUnicode_New(0, 0);
            v[nv++] = Py_NewRef(r->b);
            v[nv++] = r->p != NULL ? Py_NewRef(r->p) : Py_XNewRef(empty);
            v[nv++] = PyFloat_FromDouble(r->pts);
            v[nv++] = PyFloat_FromDouble(r->first);
            v[nv++] = PyFloat_FromDouble(r->last);
            break;
        default: /* [bucket,] [session,] model, the sums, first, last */
            if (t == 1) v[nv++] = PyLong_FromLongLong(r->bucket);
            if (t == 3) v[nv++] = Py_NewRef(r->b);
            v[nv++] = Py_NewRef(r->a);
            for (j = 0; j < 7; j++) v[nv++] = PyLong_FromLongLong(r->sums[j]);
            v[nv++] = PyFloat_FromDouble(r->first);
            v[nv++] = PyFloat_FromDouble(r->last);
        }
        for (j = 0; j < nv; j++) {
            if (v[j] == NULL) {
                int m;
                for (m = j + 1; m < nv; m++) Py_XDECREF(v[m]);
                Py_DECREF(list);
                Py_XDECREF(empty);
                return NULL;
            }
            PyList_SET_ITEM(list, at++, v[j]);
        }
    }
    Py_XDECREF(empty);
    return list;
}

/* block_sums(lo, hi): per model, the sums of the finished cells of buckets lo <= b < hi
 * (model, input, output, cc, c1h, cr, pico, rows, last, first), as Rollups._store_blocks_sql
 * reads them from rollup_cell; None when a sum is past 64 bits */
static PyObject *cellsums_block_sums(PyObject *self, PyObject *args) {
    CellSumsObject *o = (CellSumsObject *)self;
    long long lo, hi;
    size_t a = 0, b, i, m = 0, cap = 8;
    drow_t *per = NULL;
    PyObject *list = NULL;
    if (!PyArg_ParseTuple(args, "LL:block_sums", &lo, &hi)) return NULL;
    if (o->kept == NULL) {
        PyErr_SetString(PyExc_ValueError, "block_sums: after finish()");
        return NULL;
    }
    b = o->nkept;
    while (a < b) { /* the first kept cell of bucket >= lo (they are in bucket order) */
        size_t mid = (a + b) / 2;
        if (o->cells[o->kept[mid]].bucket < lo)
            a = mid + 1;
        else
            b = mid;
    }
    per = (drow_t *)PyMem_Malloc(cap * sizeof *per);
    if (per == NULL) return PyErr_NoMemory();
    for (i = a; i < o->nkept && o->cells[o->kept[i]].bucket < hi; i++) {
        const gcell_t *c = &o->cells[o->kept[i]];
        size_t j;
        int fresh = 0;
        for (j = 0; j < m && cmp_str(per[j].a, c->model) != 0; j++)
            ;
        if (j == m) {
            fresh = 1;
            if (m == cap) {
                drow_t *grown = (drow_t *)PyMem_Realloc(per, 2 * cap * sizeof *per);
                if (grown == NULL) {
                    PyMem_Free(per);
                    return PyErr_NoMemory();
                }
                per = grown;
                cap *= 2;
            }
            per[m].a = c->model;
            m++;
        }
        if (!drow_add(&per[j], c, fresh)) {
            PyMem_Free(per);
            Py_RETURN_NONE;
        }
    }
    list = PyList_New((Py_ssize_t)m);
    for (i = 0; list != NULL && i < m; i++) {
        const drow_t *r = &per[i];
        PyObject *t = Py_BuildValue("(OLLLLLLLdd)", r->a, r->sums[0], r->sums[1], r->sums[2],
                                    r->sums[3], r->sums[4], r->sums[5], r->sums[6], r->last,
                                    r->first);
        if (t == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    PyMem_Free(per);
    return list;
}

static PyObject *cellsums_rows(PyObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromSize_t(((CellSumsObject *)self)->nrows);
}

static PyMethodDef cellsums_methods[] = {
    {"add", cellsums_add, METH_O,
     "add(rows) -> (hashes, times) | None: the rows (lists in record field order, priced)\n"
     "summed into their cells (bucket, model, session, project: by value), a 32-bit hash of\n"
     "each row's key (4 bytes a row, native order) and its time and cost (two doubles a row);\n"
     "None when a row is not one these sums fit (then always: the caller sums in SQL)."},
    {"finish", cellsums_finish, METH_VARARGS,
     "finish(gone, times) -> (int, list) | None: the cells of the rows added but the gone\n"
     "ones ((rowid, input, output, cc, c1h, cr, session, project, model) each; rowid: 1 +\n"
     "the row's place in the adds; times: what add() gave, joined), in key order for args():\n"
     "how many there are, and (index, bucket, model, session, project) of those whose first\n"
     "or last time was a gone row's, for set_times(). None when the gone rows do not add up\n"
     "to these rows (then always)."},
    {"set_times", cellsums_set_times, METH_VARARGS,
     "set_times(index, first, last): a finished cell's first and last times (those of the\n"
     "records it keeps)."},
    {"args", cellsums_args, METH_VARARGS,
     "args(agent, start, k) -> list: the finished cells start to start + k in key order as\n"
     "rollup_cell's rows, one after the other (agent, bucket, model, session, project,\n"
     "input, output, cc, c1h, cr, pico, rows, first, last): one INSERT's parameters."},
    {"derive", cellsums_derive, METH_NOARGS,
     "derive() -> bool: the other stored sums from the finished cells (their times set):\n"
     "rollup_project, rollup_bucket, rollup_total, rollup_session_model and rollup_session\n"
     "as tokmon.core.rollups' SQL makes them from rollup_cell; False when a sum is past 64\n"
     "bits (the caller's SQL then says so)."},
    {"count", cellsums_count, METH_O, "count(table) -> int: the rows derive() made for it."},
    {"table_args", cellsums_table_args, METH_VARARGS,
     "table_args(table, agent, start, k) -> list: rows start to start + k of a derived table\n"
     "in its key order, one after the other: one INSERT's parameters."},
    {"block_sums", cellsums_block_sums, METH_VARARGS,
     "block_sums(lo, hi) -> list | None: per model, the sums of the finished cells of buckets\n"
     "lo <= b < hi: (model, input, output, cc, c1h, cr, pico, rows, last, first); None when\n"
     "a sum is past 64 bits."},
    {"rows", cellsums_rows, METH_NOARGS, "rows() -> int: how many rows were added."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CellSumsType = {
    PyVarObject_HEAD_INIT(NULL, 0) /* (a comma in the macro) */
    .tp_name = "tokmon._native._scan.CellSums",
    .tp_basicsize = sizeof(CellSumsObject),
    .tp_dealloc = cellsums_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The cells of a cold build's rows, summed as they come (ledger.Stage).",
    .tp_methods = cellsums_methods,
    .tp_new = cellsums_new,
};

/* dup_rows(hashes) -> (set, list): the 32-bit values (native order) found more than once,
   and the indexes of every value found more than once, ascending; the passes without the
   GIL (a build's dedup after its load, ledger.Stage.settle) */
static PyObject *t_dup_rows(PyObject *self, PyObject *arg) {
    Py_buffer view;
    uint32_t *key = NULL, *ix = NULL, *dups = NULL;
    unsigned char *used = NULL, *many = NULL;
    size_t n, i, k = 0, nd = 0, cap = 16, mask;
    PyObject *set = NULL, *list = NULL, *out = NULL;
    (void)self;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    n = (size_t)view.len / 4;
    if (n > 0x7FFFFFFFu) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "dup_rows: more than 2**31 hashes");
        return NULL;
    }
    while (cap < 2 * n) cap <<= 1;
    mask = cap - 1;
    /* an open-addressing table of the values (no sort): a value's slot says whether it was
     * seen and whether more than once; then one pass in order takes the places of those
     * seen more than once (ascending as they come) */
    key = (uint32_t *)PyMem_RawMalloc(cap * sizeof *key);
    used = (unsigned char *)PyMem_RawCalloc(cap, 1);
    many = (unsigned char *)PyMem_RawCalloc(cap, 1);
    ix = (uint32_t *)PyMem_RawMalloc((n ? n : 1) * sizeof *ix);
    dups = (uint32_t *)PyMem_RawMalloc((n ? n : 1) * sizeof *dups);
    set = PySet_New(NULL);
    if (key == NULL || used == NULL || many == NULL || ix == NULL || dups == NULL || set == NULL) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *b = (const unsigned char *)view.buf;
    for (i = 0; i < n; i++) {
        uint32_t h;
        size_t at;
        memcpy(&h, b + 4 * i, 4);
        at = ((size_t)h * 0x9E3779B1u) & mask;
        while (used[at] && key[at] != h) at = (at + 1) & mask;
        if (!used[at]) {
            used[at] = 1;
            key[at] = h;
        } else if (!many[at]) {
            many[at] = 1;
            dups[nd++] = h;
        }
    }
    for (i = 0; i < n; i++) {
        uint32_t h;
        size_t at;
        memcpy(&h, b + 4 * i, 4);
        at = ((size_t)h * 0x9E3779B1u) & mask;
        while (key[at] != h) at = (at + 1) & mask;
        if (many[at]) ix[k++] = (uint32_t)i;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    list = PyList_New((Py_ssize_t)k);
    if (list == NULL) goto done;
    for (i = 0; i < k; i++) {
        PyObject *x = PyLong_FromUnsignedLong(ix[i]);
        if (x == NULL) goto done;
        PyList_SET_ITEM(list, (Py_ssize_t)i, x);
    }
    for (i = 0; i < nd; i++) {
        PyObject *h = PyLong_FromUnsignedLong(dups[i]);
        if (h == NULL || PySet_Add(set, h) < 0) {
            Py_XDECREF(h);
            goto done;
        }
        Py_DECREF(h);
    }
    out = PyTuple_Pack(2, set, list);
done:
    Py_XDECREF(set);
    Py_XDECREF(list);
    PyMem_RawFree(key);
    PyMem_RawFree(used);
    PyMem_RawFree(many);
    PyMem_RawFree(ix);
    PyMem_RawFree(dups);
    return out;
}

/* --- test hooks: the pre-pass must really run (its speed-up cannot vanish unseen) --------- */

/* ``test`` on the bytes of ``arg``, as a bool */
static PyObject *line_test(PyObject *arg, int (*test)(const char *, size_t)) {
    Py_buffer view;
    int ok;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    ok = test((const char *)view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

/* ``*flag`` set to the truth of ``arg`` */
static PyObject *set_flag(PyObject *arg, int *flag) {
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    *flag = on;
    Py_RETURN_NONE;
}

static PyObject *t_prepass(PyObject *self, PyObject *arg) {
    (void)self;
    return line_test(arg, prepass);
}

static PyObject *t_prepass_lines(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyLong_FromUnsignedLongLong(prepass_lines);
}

static PyObject *t_candidate(PyObject *self, PyObject *arg) {
    (void)self;
    return line_test(arg, candidate);
}

static PyObject *t_filtered_lines(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyLong_FromUnsignedLongLong(filtered_lines);
}

static PyObject *t_set_filter(PyObject *self, PyObject *arg) {
    (void)self;
    return set_flag(arg, &filter_enabled);
}

static PyObject *t_usage_lines(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyLong_FromUnsignedLongLong(usage_lines);
}

static PyObject *t_set_prepass(PyObject *self, PyObject *arg) {
    (void)self;
    return set_flag(arg, &prepass_enabled);
}

/* _set_prepass_simd(build) -> the build in use before: 0 byte loop, 1 SSE2, 2 AVX2 */
static PyObject *t_set_prepass_simd(PyObject *self, PyObject *arg) {
    long build = PyLong_AsLong(arg);
    int before = prepass_simd;
    (void)self;
    if (build == -1 && PyErr_Occurred()) return NULL;
    if (build < 0 || build > prepass_best()) {
        PyErr_SetString(PyExc_ValueError, "_set_prepass_simd: not a build this CPU runs");
        return NULL;
    }
    prepass_simd = (int)build;
    return PyLong_FromLong(before);
}

/* --- a cold build's blocks, from the rows' times and costs (ledger.Stage.block_spans) ----- */

/* The records in (ts, key) order are what tokmon.core.rollups' blocks are made of: here the
 * rows a build appended (their times and costs as CellSums.add gave them, 16 bytes a row, in
 * rowid order) without those its dedup deleted, sorted by time and, for equal times, by
 * place: the caller puts each run of equal times in key order, then spans() walks them as
 * Rollups._block_spans walks the records it reads. */
typedef struct {
    double ts;
    uint32_t at;
} ts_at;

static int cmp_ts_at(const void *a, const void *b) {
    const ts_at *x = (const ts_at *)a, *y = (const ts_at *)b;
    if (x->ts < y->ts) return -1;
    if (x->ts > y->ts) return 1;
    return (x->at > y->at) - (x->at < y->at);
}

static PyObject *t_ts_order(PyObject *self, PyObject *args) {
    Py_buffer times, gone;
    size_t n, ngone, i, k = 0, j;
    ts_at *a = NULL;
    unsigned char *dead = NULL;
    int bad = 0;
    PyObject *order = NULL, *ties = NULL, *out = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*:ts_order", &times, &gone)) return NULL;
    n = (size_t)times.len / 16;
    ngone = (size_t)gone.len / 4;
    if (times.len % 16 || gone.len % 4 || n >= 0xFFFFFFFFu) {
        PyErr_SetString(PyExc_ValueError, "ts_order: 16 bytes a row, 4 a gone row, < 2**32");
        goto done;
    }
    a = (ts_at *)PyMem_RawMalloc((n ? n : 1) * sizeof *a);
    dead = (unsigned char *)PyMem_RawCalloc(n ? n : 1, 1);
    if (a == NULL || dead == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *g = (const unsigned char *)gone.buf;
    const unsigned char *t = (const unsigned char *)times.buf;
    for (i = 0; i < ngone; i++) {
        uint32_t x;
        memcpy(&x, g + 4 * i, 4);
        if (x < n)
            dead[x] = 1;
        else
            bad = 1;
    }
    for (i = 0; i < n; i++) {
        if (dead[i]) continue;
        memcpy(&a[k].ts, t + 16 * i, 8);
        a[k].at = (uint32_t)i;
        k++;
    }
    qsort(a, k, sizeof *a, cmp_ts_at);
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "ts_order: a gone row past the rows");
        goto done;
    }
    order = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(k * 4));
    ties = PyList_New(0);
    if (order == NULL || ties == NULL) goto done;
    {
        char *op = PyBytes_AS_STRING(order);
        for (i = 0; i < k; i++) memcpy(op + 4 * i, &a[i].at, 4);
    }
    for (i = 0; i < k; i = j) { /* runs of equal times: (lo, hi) places in the order */
        for (j = i + 1; j < k && a[j].ts == a[i].ts; j++)
            ;
        if (j - i > 1) {
            PyObject *run = Py_BuildValue("(nn)", (Py_ssize_t)i, (Py_ssize_t)j);
            if (run == NULL || PyList_Append(ties, run) < 0) {
                Py_XDECREF(run);
                goto done;
            }
            Py_DECREF(run);
        }
    }
    out = PyTuple_Pack(2, order, ties);
done:
    PyBuffer_Release(&times);
    PyBuffer_Release(&gone);
    PyMem_RawFree(a);
    PyMem_RawFree(dead);
    Py_XDECREF(order);
    Py_XDECREF(ties);
    return out;
}

/* Python's float floor division (CPython's _float_div_mod), for wx > 0 */
static double py_floordiv(double vx, double wx) {
    double mod = fmod(vx, wx), div, floordiv;
    div = (vx - mod) / wx;
    if (mod && ((wx < 0) != (mod < 0))) div -= 1.0;
    if (div) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, vx / wx);
    }
    return floordiv;
}

static PyObject *span_tuple(double first, double start, double next, int has_next, int edge,
                            Py_ssize_t n, double cost) {
    PyObject *nx = has_next ? PyFloat_FromDouble(next) : Py_NewRef(Py_None), *t;
    if (nx == NULL) return NULL;
    t = Py_BuildValue("(ddNOnd)", first, start, nx, edge ? Py_True : Py_False, n, cost);
    return t;
}

static PyObject *t_spans(PyObject *self, PyObject *args) {
    Py_buffer order, times;
    double bs, first = 0.0, start = 0.0, end = 0.0, cost = 0.0;
    int aligned, edge = 0;
    size_t k, nrows, i;
    Py_ssize_t n = 0;
    PyObject *out = NULL, *list = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*dp:spans", &order, &times, &bs, &aligned)) return NULL;
    k = (size_t)order.len / 4;
    nrows = (size_t)times.len / 16;
    if (order.len % 4 || times.len % 16) {
        PyErr_SetString(PyExc_ValueError, "spans: 4 bytes a place, 16 a row");
        goto done;
    }
    list = PyList_New(0);
    if (list == NULL) goto done;
    for (i = 0; i < k; i++) {
        uint32_t at;
        double ts, c;
        memcpy(&at, (const char *)order.buf + 4 * i, 4);
        if (at >= nrows) {
            PyErr_SetString(PyExc_ValueError, "spans: a place past the rows");
            goto done;
        }
        memcpy(&ts, (const char *)times.buf + 16 * (size_t)at, 8);
        memcpy(&c, (const char *)times.buf + 16 * (size_t)at + 8, 8);
        if (n && ts - start > bs) { /* (group_blocks' test) */
            PyObject *sp = span_tuple(first, start, ts, 1, aligned && edge, n, cost);
            if (sp == NULL || PyList_Append(list, sp) < 0) {
                Py_XDECREF(sp);
                goto done;
            }
            Py_DECREF(sp);
            n = 0;
        }
        if (!n) {
            first = ts;
            start = (double)((long long)py_floordiv(first, 3600.0) * 3600LL);
            end = start + bs;
            cost = 0.0;
            edge = 0;
        }
        if (ts == end) edge = 1;
        cost += c; /* in order, not compensated */
        n++;
    }
    if (n) {
        PyObject *sp = span_tuple(first, start, 0.0, 0, aligned && edge, n, cost);
        if (sp == NULL || PyList_Append(list, sp) < 0) {
            Py_XDECREF(sp);
            goto done;
        }
        Py_DECREF(sp);
    }
    out = Py_NewRef(list);
done:
    PyBuffer_Release(&order);
    PyBuffer_Release(&times);
    Py_XDECREF(list);
    return out;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"parse_many", parse_many, METH_VARARGS,
     "parse_many(buf, paths, sizes, max_tokens) -> list[Parsed]: each file (from its start;\n"
     "sizes: their stat's, as scan's ``size``) opened, read into buf (writable), its complete\n"
     "lines parsed and fingerprinted, and closed, all without the GIL; finish() builds the\n"
     "rows of each."},
    {"batch_args", t_batch_args, METH_VARARGS,
     "batch_args(rows, start, k) -> (list, bool) | None: rows[start:start + k] (lists of 12\n"
     "values) as one list of parameters, without the last value of each row when every row's\n"
     "is None (then True); None when a row is not a list of 12 (ledger.Stage._flush)."},
    {"finish", finish, METH_VARARGS,
     "finish(parsed, source, best, strings, text, fallback, title, ts_min, ts_max[, price])\n"
     "-> (poison, end, fingerprint) | None: the rows of a parse_many file into ``best`` as\n"
     "scan() builds them (its lines for Python to fallback(bytes, file offset), the title\n"
     "lines C read to title(session id, type, title)); None when the file\n"
     "did not fit the buffer (nothing parsed); raises OSError as os.open or a read would."},
    {"rejects", t_rejects, METH_O,
     "rejects(data) -> bool: whether yyjson, as orjson reads, rejects data as JSON (so\n"
     "orjson would); False when it accepts it."},
    {"_fingerprint", t_fingerprint, METH_VARARGS,
     "_fingerprint(buf, end) -> str: reader.fingerprint's digest of buf[:end] (tests)."},
    {"ts_order", t_ts_order, METH_VARARGS,
     "ts_order(times, gone) -> (order, ties): the rows of times (ts and cost, two doubles a\n"
     "row, as CellSums.add gives them) but the gone ones (uint32 indexes) sorted by time,\n"
     "then place (uint32 indexes, 4 bytes each), and the (lo, hi) places of each run of equal\n"
     "times (the sort without the GIL)."},
    {"spans", t_spans, METH_VARARGS,
     "spans(order, times, block_seconds, aligned) -> list: the blocks' spans of the rows\n"
     "in that order, as tokmon.core.rollups.Rollups._block_spans makes them."},
    {"dup_rows", t_dup_rows, METH_O,
     "dup_rows(hashes) -> (set, list): the 32-bit values (native order, as CellSums.add gives\n"
     "them) found more than once in the buffer, and the indexes of all their places, in\n"
     "ascending order (the passes without the GIL)."},
    {"_trim", t_trim, METH_NOARGS,
     "_trim() -> int: free the buffers kept between calls (the scan's end); returns how many\n"
     "sets there were."},
    {"_prepass", t_prepass, METH_O,
     "_prepass(line) -> bool: whether the pre-pass alone skips this line (tests)."},
    {"_prepass_lines", t_prepass_lines, METH_NOARGS,
     "_prepass_lines() -> int: lines skipped by the pre-pass in this process (tests)."},
    {"_candidate", t_candidate, METH_O,
     "_candidate(line) -> bool: whether the candidate filter reads this line (tests)."},
    {"_filtered_lines", t_filtered_lines, METH_NOARGS,
     "_filtered_lines() -> int: lines skipped unread by the filter in this process (tests)."},
    {"_set_filter", t_set_filter, METH_O,
     "_set_filter(on): switch the candidate filter on or off (tests compare)."},
    {"_usage_lines", t_usage_lines, METH_NOARGS,
     "_usage_lines() -> int: lines decided without yyjson after the pre-pass (tests)."},
    {"_set_prepass", t_set_prepass, METH_O,
     "_set_prepass(on): switch the pre-pass on or off (tests compare with yyjson alone)."},
    {"_set_prepass_simd", t_set_prepass_simd, METH_O,
     "_set_prepass_simd(build) -> int: run the pre-pass's build 0 (byte loop), 1 (SSE2) or\n"
     "2 (AVX2), at most PREPASS_BEST; returns the one in use before (tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tokmon._native._scan",
    "The native line scanner of tokmon.core.parser.scan_lines (yyjson).", -1, methods,
    NULL, NULL, NULL, NULL,
};

/* glibc's malloc, limited to one arena (M_ARENA_MAX) for a cold scan's peak RSS
 * (docs/performance.md, tenth session: -1.3 MB at 500 MB and at 2 GB, fewer page
 * faults, no measurable CPU or wall cost). By default each thread that allocates gets an
 * arena of its own, and the scan thread's kept ~1-2 MB of freed memory that the main
 * thread's SQLite and Python could not reuse; most allocations hold the GIL anyway, and the
 * scan's own are per call, mostly from the thread's cache. (A fixed mmap threshold, glibc's
 * 128 KiB, saved another 0.4 MB but cost ~6,000 page faults a run: not set.) Set once, here
 * (before any scan thread starts), and only when the user set no malloc setting of their
 * own (a MALLOC_* variable, a glibc.malloc tunable). Other C libraries (musl, macOS,
 * Windows): nothing. */
static int malloc_tuned = 0; /* whether this module set them */

static void tune_malloc(void) {
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    static const char *const user[] = {
        "MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST", "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", NULL,
    };
    const char *tunables = getenv("GLIBC_TUNABLES");
    size_t i;
    for (i = 0; user[i] != NULL; i++)
        if (getenv(user[i]) != NULL) return;
    if (tunables != NULL && strstr(tunables, "glibc.malloc.") != NULL) return;
    malloc_tuned = mallopt(M_ARENA_MAX, 1) == 1;
#endif
}

PyMODINIT_FUNC PyInit__scan(void) {
    PyObject *m;
    prepass_simd = prepass_best();
    tune_malloc();
    if (PyType_Ready(&ParsedType) < 0 || PyType_Ready(&CellSumsType) < 0) return NULL;
    m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "CellSums", (PyObject *)&CellSumsType) < 0 ||
        PyModule_AddIntConstant(m, "MALLOC_TUNED", malloc_tuned) < 0 ||
        PyModule_AddStringConstant(m, "YYJSON_VERSION", YYJSON_VERSION_STRING) < 0 ||
        PyModule_AddIntConstant(m, "ROW_OUTPUT", ROW_OUTPUT) < 0 ||
        PyModule_AddIntConstant(m, "FP_WINDOW", FP_WINDOW) < 0 ||
        PyModule_AddIntConstant(m, "FP_BYTES", FP_BYTES) < 0 ||
        PyModule_AddIntConstant(m, "MAX_DEPTH", MAX_DEPTH) < 0 ||
        PyModule_AddIntConstant(m, "PREPASS_BEST", prepass_simd) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
