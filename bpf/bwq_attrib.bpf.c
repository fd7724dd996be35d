// SPDX-License-Identifier: GPL-2.0
/*
 * Attribution of memory traffic to tasks and cgroups (DESIGN §4.1, ebpf).
 *
 * A per-CPU counter of memory traffic (LLC misses, or what the loader
 * chose) sits in `counters`.  At every context switch the counter's growth
 * since the last read on this CPU is charged to the task that ran
 * (prev), and on a periodic tick to the task running; growth is scaled by
 * time enabled / time running when the counter was multiplexed.  Bytes =
 * events x line size is the loader's business: an estimate.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} counters SEC(".maps");

struct last_read {
	u64 counter, enabled, running;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct last_read);
} last SEC(".maps");

/* Everything, per CPU: the sum is the total. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} total SEC(".maps");

/* Registered NPU clients, by tgid: the loader adds and removes them, so
 * they are never evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u64);
} npu_tgids SEC(".maps");

/* Every other task and every cgroup: bounded, least recently used go. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, u64);
} by_tgid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, u64);
} by_cgroup SEC(".maps");

static __always_inline void add(void *map, const void *key, u64 v)
{
	u64 *p = bpf_map_lookup_elem(map, key);
	if (p)
		__sync_fetch_and_add(p, v);
	else
		bpf_map_update_elem(map, key, &v, BPF_NOEXIST);
}

/* Charges the counter's growth on this CPU to (tgid, cgroup). */
static __always_inline void charge(u32 tgid, u64 cgid)
{
	struct bpf_perf_event_value v = {};
	u32 zero = 0;
	struct last_read *l = bpf_map_lookup_elem(&last, &zero);
	if (!l || bpf_perf_event_read_value(&counters, BPF_F_CURRENT_CPU, &v, sizeof v))
		return;
	/* The first read on a CPU, or a counter that went back: no interval. */
	int skip = l->enabled == 0 || v.counter < l->counter;
	u64 dc = v.counter - l->counter, de = v.enabled - l->enabled, dr = v.running - l->running;
	l->counter = v.counter;
	l->enabled = v.enabled;
	l->running = v.running;
	if (skip)
		return;
	/* Multiplexed: the counter ran dr of de nanoseconds. */
	if (dr && de > dr)
		dc = dc * de / dr;
	if (!dc)
		return;
	u64 *t = bpf_map_lookup_elem(&total, &zero);
	if (t)
		*t += dc;
	u64 *n = bpf_map_lookup_elem(&npu_tgids, &tgid);
	if (n)
		__sync_fetch_and_add(n, dc);
	else
		add(&by_tgid, &tgid, dc);
	add(&by_cgroup, &cgid, dc);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 tgid = BPF_CORE_READ(prev, tgid);
	u64 cgid = BPF_CORE_READ(prev, cgroups, dfl_cgrp, kn, id);
	charge(tgid, cgid);
	return 0;
}

/* The periodic tick: a CPU-clock perf event per CPU. */
SEC("perf_event")
int on_tick(struct bpf_perf_event_data *ctx)
{
	charge(bpf_get_current_pid_tgid() >> 32, bpf_get_current_cgroup_id());
	return 0;
}
