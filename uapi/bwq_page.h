/* SPDX-License-Identifier: MIT */
/*
 * bwq_page.h: the decision page of bwqd (DESIGN §4.5).
 *
 * One 4 KiB sealed memfd, written only by bwqd, mapped read-only by clients.
 * Updates use a sequence lock: `seq` is odd while the writer is inside;
 * readers retry while it is odd or changed under them.
 */
#ifndef BWQ_PAGE_H
#define BWQ_PAGE_H

#include <linux/types.h>

#if defined(__cplusplus)
extern "C" {
#endif

#define BWQ_PAGE_MAGIC 0x31515742u /* "BWQ1" */
#define BWQ_PAGE_VERSION 1
#define BWQ_PAGE_SIZE 4096

#define BWQ_PAGE_STALE   (1u << 0) /* no valid sample for three intervals */
#define BWQ_PAGE_STOPPED (1u << 1) /* bwqd has stopped; the depth is the last one */

struct bwq_page {
	__u32 magic;
	__u32 version;
	__u32 seq;
	__u32 flags;
	__u64 timestamp_ns;    /* CLOCK_MONOTONIC of the decision */
	__u64 max_bps;         /* bytes per second */
	__u64 used_bps;
	__u64 available_bps;
	__u8 act_bits;         /* 4, 6, 8 or 16 */
	__u8 pad0[3];
	__u32 section;         /* FIG. 5 section, 1 = highest bandwidth */
	char source[16];       /* NUL-terminated source name */
	__u32 table_generation;
	__u32 pad1;
	__u64 published_ns;    /* CLOCK_MONOTONIC of bwqd's last update: every interval */
	__u64 interval_ns;     /* bwqd's sampling interval; 0 from a bwqd that did not say */
	__u64 reserved[6];
};

/* A page bwqd has not updated for this many intervals (and at least
 * BWQ_PAGE_FROZEN_MIN_NS) is frozen: bwqd is stopped, stalled or blocked,
 * and clients treat its decision as stale (bwq_decision_frozen). */
#define BWQ_PAGE_FROZEN_INTERVALS 10
#define BWQ_PAGE_FROZEN_MIN_NS 500000000ull

/* A consistent copy of the page. */
struct bwq_decision {
	__u32 flags;
	__u8 act_bits;
	__u8 pad[3];
	__u32 section;
	__u32 table_generation;
	__u64 timestamp_ns;
	__u64 max_bps, used_bps, available_bps;
	char source[16];
	__u64 published_ns, interval_ns;
};

#if defined(__cplusplus)
#define BWQ_PAGE_ASSERT(c) static_assert(c, #c)
#else
#define BWQ_PAGE_ASSERT(c) _Static_assert(c, #c)
#endif
BWQ_PAGE_ASSERT(sizeof(struct bwq_page) == 144 && sizeof(struct bwq_page) <= BWQ_PAGE_SIZE);
BWQ_PAGE_ASSERT(__builtin_offsetof(struct bwq_page, timestamp_ns) == 16 && __builtin_offsetof(struct bwq_page, act_bits) == 48 &&
		__builtin_offsetof(struct bwq_page, source) == 56 && __builtin_offsetof(struct bwq_page, published_ns) == 80 &&
		__builtin_offsetof(struct bwq_page, reserved) == 96);
BWQ_PAGE_ASSERT(sizeof(struct bwq_decision) == 80 && __builtin_offsetof(struct bwq_decision, timestamp_ns) == 16);
#undef BWQ_PAGE_ASSERT

/* Copy a consistent decision out of the page.  Returns 0, -EPROTO for a page
 * that is not a bwq page, or -EAGAIN if the writer kept it busy for too long. */
static inline int bwq_page_read(const struct bwq_page *p, struct bwq_decision *ret)
{
	unsigned tries;

	if (__atomic_load_n(&p->magic, __ATOMIC_RELAXED) != BWQ_PAGE_MAGIC ||
	    __atomic_load_n(&p->version, __ATOMIC_RELAXED) != BWQ_PAGE_VERSION)
		return -71; /* EPROTO */
	for (tries = 0; tries < 1000000; tries++) {
		struct bwq_decision d;
		unsigned i;
		__u32 s1 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);

		if (s1 & 1u)
			continue;
		d.flags = __atomic_load_n(&p->flags, __ATOMIC_RELAXED);
		d.act_bits = __atomic_load_n(&p->act_bits, __ATOMIC_RELAXED);
		d.pad[0] = d.pad[1] = d.pad[2] = 0;
		d.section = __atomic_load_n(&p->section, __ATOMIC_RELAXED);
		d.table_generation = __atomic_load_n(&p->table_generation, __ATOMIC_RELAXED);
		d.timestamp_ns = __atomic_load_n(&p->timestamp_ns, __ATOMIC_RELAXED);
		d.max_bps = __atomic_load_n(&p->max_bps, __ATOMIC_RELAXED);
		d.used_bps = __atomic_load_n(&p->used_bps, __ATOMIC_RELAXED);
		d.available_bps = __atomic_load_n(&p->available_bps, __ATOMIC_RELAXED);
		for (i = 0; i < sizeof d.source; i++)
			d.source[i] = __atomic_load_n(&p->source[i], __ATOMIC_RELAXED);
		d.source[sizeof d.source - 1] = 0;
		d.published_ns = __atomic_load_n(&p->published_ns, __ATOMIC_RELAXED);
		d.interval_ns = __atomic_load_n(&p->interval_ns, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&p->seq, __ATOMIC_RELAXED) == s1) {
			*ret = d;
			return 0;
		}
	}
	return -11; /* EAGAIN */
}

/* Whether the page was frozen at now_ns (CLOCK_MONOTONIC): not updated for
 * BWQ_PAGE_FROZEN_INTERVALS intervals, and at least BWQ_PAGE_FROZEN_MIN_NS.
 * A page from a bwqd that gives no interval counts one second. */
static inline int bwq_decision_frozen(const struct bwq_decision *d, __u64 now_ns)
{
	__u64 t = d->published_ns ? d->published_ns : d->timestamp_ns;
	__u64 limit = d->interval_ns ? d->interval_ns * BWQ_PAGE_FROZEN_INTERVALS : 1000000000ull;

	if (limit < BWQ_PAGE_FROZEN_MIN_NS)
		limit = BWQ_PAGE_FROZEN_MIN_NS;
	return now_ns > t && now_ns - t > limit;
}

/* A client's traffic counter (DESIGN §4.3): a memfd of BWQ_TRAFFIC_SIZE
 * bytes sealed against shrinking, written by the client and mapped
 * read-only by bwqd, given to RegisterClient as the option "TrafficCounter"
 * (h).  `bytes` counts, from 0 and never down, every byte the client's jobs
 * moved (the device's per-layer counters), stored with release order.
 * Sources that cannot tell the NPU clients' traffic from others' (the probe,
 * perf's memory-controller counters, a replay trace without npu_Bps)
 * subtract what the counters moved in each interval. */
#define BWQ_TRAFFIC_MAGIC 0x54515742u /* "BWQT" */
#define BWQ_TRAFFIC_VERSION 1
#define BWQ_TRAFFIC_SIZE 4096

struct bwq_traffic {
	__u32 magic;
	__u32 version;
	__u64 bytes;
	__u64 reserved[6];
};
#if defined(__cplusplus)
static_assert(sizeof(struct bwq_traffic) == 64, "bwq_traffic layout");
#else
_Static_assert(sizeof(struct bwq_traffic) == 64, "bwq_traffic layout");
#endif

/* Writer side, for bwqd (and tests): begin and end one update. */
static inline void bwq_page_write_begin(struct bwq_page *p)
{
	__atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void bwq_page_write_end(struct bwq_page *p)
{
	__atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_RELEASE);
}

#if defined(__cplusplus)
}
#endif

#endif /* BWQ_PAGE_H */
