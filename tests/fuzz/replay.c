/*
 * replay.c - run a fuzz target's LLVMFuzzerTestOneInput() over files,
 * without libFuzzer, so that make check replays the seed corpus (and any
 * crash file a fuzzing run left) with an ordinary compiler.
 *
 * With no arguments: every regular file directly in CORPUS_DIR.  With
 * arguments: each named file, or every regular file directly in each
 * named directory.  Prints how many inputs ran; exits 0 (a failing input
 * aborts inside the target), 1 when a file cannot be read.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef CORPUS_DIR
#define CORPUS_DIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
pp_replay_file(const char *path, unsigned long *count)
{
	uint8_t *data = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		perror(path);
		return -1;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			data = realloc(data, cap);
			if (data == NULL) {
				fclose(f);
				return -1;
			}
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		perror(path);
		fclose(f);
		free(data);
		return -1;
	}
	fclose(f);
	/* a copy of exactly len bytes, so that overreads are caught */
	{
		uint8_t *exact = malloc(len ? len : 1);

		if (exact == NULL) {
			free(data);
			return -1;
		}
		memcpy(exact, data, len);
		free(data);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	(*count)++;
	return 0;
}

static int
pp_replay_path(const char *path, unsigned long *count)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int ret = 0;

	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return pp_replay_file(path, count);
	d = opendir(path);
	if (d == NULL) {
		perror(path);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char sub[4096];

		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (stat(sub, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (pp_replay_file(sub, count) != 0)
			ret = -1;
	}
	closedir(d);
	return ret;
}

int
main(int argc, char **argv)
{
	unsigned long count = 0;
	int i, ret = 0;

	if (argc < 2) {
		ret = pp_replay_path(CORPUS_DIR, &count);
	} else {
		for (i = 1; i < argc; i++)
			if (pp_replay_path(argv[i], &count) != 0)
				ret = -1;
	}
	printf("%s: %lu inputs ran\n", argv[0], count);
	return ret == 0 ? 0 : 1;
}
