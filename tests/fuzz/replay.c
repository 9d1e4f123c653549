/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The gcc (ASan+UBSan) build's stand-in for libFuzzer: runs a harness
 * once over every file of its seed corpus, so `make check` replays the
 * corpora (crash regressions included) without clang.  Built as
 * BUILD/tests/test_fuzz_<name>; the corpus is tests/fuzz/corpus/<name>
 * under XBD_TOP (set by tests/run-tests.sh), or the files and
 * directories given as arguments.
 */
#include "tests/fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t len;
	FILE *f = fopen(path, "rb");

	if (!f || fstat(fileno(f), &st)) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	len = (size_t)st.st_size;
	/* a copy of exactly the input's size, as libFuzzer gives it, so
	 * ASan sees a read one byte past the end */
	buf = malloc(len ? len : 1);
	if (!buf || fread(buf, 1, len, f) != len) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int run_path(const char *path, unsigned *count)
{
	struct dirent **names;
	struct stat st;
	int n, i, err = 0;

	if (stat(path, &st)) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (run_file(path))
			return -1;
		++*count;
		return 0;
	}
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		char file[PATH_MAX];

		if (names[i]->d_name[0] != '.' && !err) {
			snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
			if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
				if (run_file(file))
					err = -1;
				else
					++*count;
			}
		}
		free(names[i]);
	}
	free(names);
	return err;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	const char *top = getenv("XBD_TOP");
	char dir[PATH_MAX];
	unsigned count = 0;
	int i;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1) {
		for (i = 1; i < argc; i++)
			if (run_path(argv[i], &count))
				return 1;
	} else {
		if (strncmp(base, "test_fuzz_", 10)) {
			fprintf(stderr, "replay: cannot tell the harness from %s\n", base);
			return 1;
		}
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s",
			 top ? top : ".", base + 10);
		if (run_path(dir, &count))
			return 1;
	}
	printf("replayed %u inputs\n", count);
	/* an empty corpus would pass without testing anything */
	return count ? 0 : 1;
}
