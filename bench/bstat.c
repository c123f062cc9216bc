/*
 * bstat.c - clocks, process CPU time, quantiles and the report of an
 * alternating-slice run (see bstat.h).
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bstat.h"

double
bs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t
bs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool
bs_read_small(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n > 0;
}

bool
bs_proc_cpu(pid_t pid, double *sched, double *ticks)
{
	char path[320], buf[1024], *p;
	unsigned long long run, ut, st, total = 0;
	struct dirent *de;
	DIR *d;
	int i;

	*sched = -1;
	*ticks = -1;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return false;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat",
			 (int)pid, de->d_name);
		if (bs_read_small(path, buf, sizeof(buf)) &&
		    sscanf(buf, "%llu", &run) == 1)
			total += run;
	}
	closedir(d);
	*sched = (double)total / 1e9;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!bs_read_small(path, buf, sizeof(buf)))
		return false;
	/* The command name may hold spaces: count fields after its ')'. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return false;
	for (i = 0; i < 12 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, "%llu %llu", &ut, &st) != 2)
		return false;
	*ticks = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return true;
}

double
bs_self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int
bs_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void
bs_sort(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), bs_cmp);
}

double
bs_quantile(double *v, size_t n, double q)
{
	double pos, frac;
	size_t i;

	if (n == 0)
		return 0;
	bs_sort(v, n);
	pos = q * (double)(n - 1);
	i = (size_t)pos;
	frac = pos - (double)i;
	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + frac * (v[i + 1] - v[i]);
}

int
bs_slot(const struct bs_run *run, const char *name)
{
	int i;

	for (i = 0; i < run->nslots; i++)
		if (strcmp(run->names[i], name) == 0)
			return i;
	return -1;
}

bool
bs_add_ratio(struct bs_run *run, const char *spec, bool aa)
{
	char a[64], *slash;
	int ia, ib;

	if (run->nratios >= BS_MAX_RATIOS || strlen(spec) >= sizeof(a))
		return false;
	strcpy(a, spec);
	slash = strchr(a, '/');
	if (slash == NULL)
		return false;
	*slash = '\0';
	ia = bs_slot(run, a);
	ib = bs_slot(run, slash + 1);
	if (ia < 0 || ib < 0)
		return false;
	if (aa)
		run->aa = run->nratios;
	run->ratio_a[run->nratios] = ia;
	run->ratio_b[run->nratios++] = ib;
	return true;
}

void
bs_add(struct bs_run *run, const struct bs_slice *s)
{
	struct bs_slice *n;

	if (run->nslices == run->cap) {
		run->cap = run->cap ? run->cap * 2 : 64;
		n = realloc(run->slices, run->cap * sizeof(*n));
		if (n == NULL) {
			perror("realloc");
			exit(1);
		}
		run->slices = n;
	}
	run->slices[run->nslices++] = *s;
}

int
bs_order(const struct bs_run *run, int round, int i)
{
	return (i + round) % run->nslots;
}

static double
bs_rate(const struct bs_slice *s)
{
	return s->secs > 0 ? (double)s->count / s->secs : 0;
}

/* Server CPU microseconds per operation of a slice, -1 when unknown. */
static double
bs_cpu_op(const struct bs_slice *s)
{
	double cpu = s->srv_cpu >= 0 ? s->srv_cpu : s->srv_ticks;

	if (cpu < 0 || s->count == 0)
		return -1;
	return cpu * 1e6 / (double)s->count;
}

/* The slice of slot in round r, or NULL. */
static const struct bs_slice *
bs_find(const struct bs_run *run, int slot, int r)
{
	size_t i;

	for (i = 0; i < run->nslices; i++)
		if (run->slices[i].slot == slot && run->slices[i].round == r)
			return &run->slices[i];
	return NULL;
}

static void
bs_report_slots(const struct bs_run *run, double *v)
{
	double sum_secs, sum_cpu, sum_ticks, sum_cli, med, p25, p75, lo, hi;
	double p50, p99, util;
	uint64_t count, errors;
	size_t i, n;
	int k;

	printf("%-10s %6s %10s %6s %17s %8s %8s %9s %9s %5s %5s %6s\n", "mode",
	       "slices", "median/s", "IQR%", "min..max/s", "p50 us", "p99 us",
	       "cpu us/op", "tick us/op", "srv%", "cli%", "errors");
	for (k = 0; k < run->nslots; k++) {
		n = 0;
		sum_secs = sum_cpu = sum_ticks = sum_cli = 0;
		count = errors = 0;
		for (i = 0; i < run->nslices; i++) {
			const struct bs_slice *s = &run->slices[i];

			if (s->slot != k)
				continue;
			v[n++] = bs_rate(s);
			sum_secs += s->secs;
			sum_cpu += s->srv_cpu;
			sum_ticks += s->srv_ticks;
			sum_cli += s->cli_cpu;
			count += s->count;
			errors += s->errors;
		}
		if (n == 0)
			continue;
		med = bs_quantile(v, n, 0.5);
		p25 = bs_quantile(v, n, 0.25);
		p75 = bs_quantile(v, n, 0.75);
		lo = v[0];
		hi = v[n - 1];
		for (i = n = 0; i < run->nslices; i++)
			if (run->slices[i].slot == k)
				v[n++] = run->slices[i].p50_us;
		p50 = bs_quantile(v, n, 0.5);
		for (i = n = 0; i < run->nslices; i++)
			if (run->slices[i].slot == k)
				v[n++] = run->slices[i].p99_us;
		p99 = bs_quantile(v, n, 0.5);
		util = run->pids[k] && sum_secs > 0 ? sum_cpu / sum_secs : -1;
		printf("%-10s %6zu %10.0f %6.1f %8.0f..%-8.0f %8.1f %8.1f ",
		       run->names[k], n, med,
		       med > 0 ? (p75 - p25) / med * 100 : 0, lo, hi, p50, p99);
		if (run->pids[k] && count > 0)
			printf("%9.2f %9.2f %5.0f ", sum_cpu * 1e6 / count,
			       sum_ticks * 1e6 / count, util * 100);
		else
			printf("%9s %9s %5s ", "-", "-", "-");
		printf("%5.0f %6llu\n",
		       sum_secs > 0 ? sum_cli / sum_secs * 100 : 0,
		       (unsigned long long)errors);
		printf("RESULT slot=%s unit=%s rate=%.0f iqr_pct=%.1f "
		       "p50_us=%.1f p99_us=%.1f cpu_us=%.3f util_pct=%.0f "
		       "errors=%llu count=%llu\n",
		       run->names[k], run->unit, med,
		       med > 0 ? (p75 - p25) / med * 100 : 0, p50, p99,
		       run->pids[k] && count ? sum_cpu * 1e6 / count : -1,
		       util * 100, (unsigned long long)errors,
		       (unsigned long long)count);
	}
}

/* Paired ratios of slot a to slot b over the rounds: rate into v,
 * CPU per operation into w; returns how many rounds had both. */
static size_t
bs_pairs(const struct bs_run *run, int a, int b, double *v, double *w,
	 size_t *nw)
{
	const struct bs_slice *sa, *sb;
	int r, rounds = 0;
	size_t n = 0, i;

	*nw = 0;
	for (i = 0; i < run->nslices; i++)
		if (run->slices[i].round + 1 > rounds)
			rounds = run->slices[i].round + 1;
	for (r = 0; r < rounds; r++) {
		sa = bs_find(run, a, r);
		sb = bs_find(run, b, r);
		if (sa == NULL || sb == NULL || bs_rate(sb) <= 0)
			continue;
		v[n++] = bs_rate(sa) / bs_rate(sb);
		if (bs_cpu_op(sa) > 0 && bs_cpu_op(sb) > 0)
			w[(*nw)++] = bs_cpu_op(sa) / bs_cpu_op(sb);
	}
	return n;
}

void
bs_report(const struct bs_run *run)
{
	double *v, *w, med, p25, p75, cmed = 0, c25 = 0, c75 = 0;
	size_t n, nw;
	int k, a, b;
	char label[80];

	v = calloc(run->nslices + 1, sizeof(*v));
	w = calloc(run->nslices + 1, sizeof(*w));
	if (v == NULL || w == NULL) {
		perror("calloc");
		exit(1);
	}
	printf("\nper mode (%s/s over the slices; latency: median over the "
	       "slices of each slice's p50 and p99; cpu: server CPU per %s "
	       "from schedstat, tick: the same from utime+stime):\n",
	       run->unit, run->unit);
	bs_report_slots(run, v);
	if (run->nratios > 0)
		printf("\npaired ratios (each round's slices compared, then "
		       "the median and quartiles over the rounds):\n"
		       "%-22s %6s %8s %17s %10s %17s\n",
		       "ratio", "rounds", "rate", "rate p25..p75", "cpu/op",
		       "cpu/op p25..p75");
	for (k = 0; k < run->nratios; k++) {
		a = run->ratio_a[k];
		b = run->ratio_b[k];
		n = bs_pairs(run, a, b, v, w, &nw);
		if (n == 0)
			continue;
		med = bs_quantile(v, n, 0.5);
		p25 = bs_quantile(v, n, 0.25);
		p75 = bs_quantile(v, n, 0.75);
		if (nw > 0) {
			cmed = bs_quantile(w, nw, 0.5);
			c25 = bs_quantile(w, nw, 0.25);
			c75 = bs_quantile(w, nw, 0.75);
		}
		snprintf(label, sizeof(label), "%s/%s%s", run->names[a],
			 run->names[b], k == run->aa ? " (A/A)" : "");
		printf("%-22s %6zu %8.3f %8.3f..%-8.3f ", label, n, med, p25,
		       p75);
		if (nw > 0)
			printf("%10.3f %8.3f..%-8.3f\n", cmed, c25, c75);
		else
			printf("%10s %17s\n", "-", "-");
		printf("RATIO %s/%s rate=%.4f rate_p25=%.4f rate_p75=%.4f "
		       "cpu=%.4f cpu_p25=%.4f cpu_p75=%.4f rounds=%zu%s\n",
		       run->names[a], run->names[b], med, p25, p75,
		       nw ? cmed : -1, nw ? c25 : -1, nw ? c75 : -1, n,
		       k == run->aa ? " aa=1" : "");
		if (k == run->aa) {
			double band = (p75 - p25) / 2;
			double off = med > 1 ? med - 1 : 1 - med;

			printf("TRUST A/A %s/%s: median %.3f, half-IQR %.3f: "
			       "ratios within +-%.1f%% of 1 are noise in this "
			       "run\n",
			       run->names[a], run->names[b], med, band,
			       (off > band ? off : band) * 100);
		}
	}
	free(v);
	free(w);
}

void
bs_dump(const struct bs_run *run, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	size_t i;

	if (f == NULL) {
		perror(path);
		return;
	}
	fprintf(f, "round,slot,secs,count,errors,rate,p50_us,p99_us,max_us,"
		   "srv_cpu_s,srv_ticks_s,cli_cpu_s\n");
	for (i = 0; i < run->nslices; i++) {
		const struct bs_slice *s = &run->slices[i];

		fprintf(f,
			"%d,%s,%.6f,%llu,%llu,%.1f,%.1f,%.1f,%.1f,%.6f,"
			"%.3f,%.6f\n",
			s->round, run->names[s->slot], s->secs,
			(unsigned long long)s->count,
			(unsigned long long)s->errors, bs_rate(s), s->p50_us,
			s->p99_us, s->max_us, s->srv_cpu, s->srv_ticks,
			s->cli_cpu);
	}
	if (f != stdout)
		fclose(f);
}
