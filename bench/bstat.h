/*
 * bstat.h - what the benchmark drivers share: clocks, the CPU time of a
 * server process, quantiles, and the summary of a run made of short
 * alternating slices.
 *
 * A run is R rounds; each round gives every mode (a "slot": one server
 * and the kind of traffic sent to it) one slice of a fraction of a
 * second, in an order rotated from round to round.  The machine's speed
 * drifts from one second to the next, so modes are compared through the
 * ratios of neighbouring slices (same round), not through totals.
 */
#ifndef BSTAT_H
#define BSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BS_MAX_SLOTS 8
#define BS_MAX_RATIOS 8

/* One slice: one slot for a fraction of a second. */
struct bs_slice {
	int slot;
	int round;
	double secs;     /* wall time of the slice */
	uint64_t count;  /* completed operations (connections, datagrams) */
	uint64_t errors; /* failed operations */
	double p50_us, p99_us, max_us; /* latency of one operation */
	double srv_cpu;   /* server CPU seconds (schedstat), -1: unknown */
	double srv_ticks; /* the same from utime+stime, -1: unknown */
	double cli_cpu;   /* CPU seconds of this process */
};

/* A run in progress. */
struct bs_run {
	const char *unit; /* "conn", "dgram" */
	int nslots;
	const char *names[BS_MAX_SLOTS];
	pid_t pids[BS_MAX_SLOTS]; /* 0: not measured */
	int nratios;
	int ratio_a[BS_MAX_RATIOS], ratio_b[BS_MAX_RATIOS];
	int aa; /* index of the A/A ratio (the noise check), -1: none */
	struct bs_slice *slices;
	size_t nslices, cap;
};

/* CLOCK_MONOTONIC in seconds and nanoseconds. */
double bs_now(void);
int64_t bs_now_ns(void);

/*
 * CPU time used so far by every thread of process pid: *sched from
 * /proc/PID/task/TID/schedstat (nanoseconds, precise), *ticks from
 * utime+stime in /proc/PID/stat (clock ticks, 10 ms resolution).
 * Returns false when the process cannot be read.
 */
bool bs_proc_cpu(pid_t pid, double *sched, double *ticks);

/* CPU seconds (user + system) of the calling process so far. */
double bs_self_cpu(void);

/* The q-quantile (0..1) of v[0..n), sorted in place; 0 when n is 0. */
double bs_quantile(double *v, size_t n, double q);

/* Sort v[0..n) ascending. */
void bs_sort(double *v, size_t n);

/* Index of slot name in run, or -1. */
int bs_slot(const struct bs_run *run, const char *name);

/*
 * Add the ratio "A/B" (slot names) to those printed; aa marks it as the
 * A/A check of the run.  Returns false when a name is unknown or the
 * table is full.
 */
bool bs_add_ratio(struct bs_run *run, const char *spec, bool aa);

/* Record one slice (the array grows as needed; exits when out of
 * memory). */
void bs_add(struct bs_run *run, const struct bs_slice *s);

/* The slot to run at position i of round r (rotated order). */
int bs_order(const struct bs_run *run, int round, int i);

/* Print the per-slot table and the paired ratios. */
void bs_report(const struct bs_run *run);

/* Print the slices, one CSV line each, to path ("-": stdout). */
void bs_dump(const struct bs_run *run, const char *path);

#endif /* BSTAT_H */
