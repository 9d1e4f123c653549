/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The interactive shell: readline with completion of commands, VM names
 * and disks, and history in ~/.xbdsh_history, when stdin is a terminal;
 * plain lines without a prompt otherwise, so scripts can pipe commands
 * in.  Also the "until a key is pressed" wait of the watch view.
 */
#include "cli/sh.h"
#include "xbd/common.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#define SH_HISTORY_FILE ".xbdsh_history"
#define SH_HISTORY_MAX 1000
#define SH_MAX_WORDS 32

volatile int sh_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	sh_interrupted = 1;
}

/* Reached only when a command is stuck inside a library call that has
 * no timeout of its own (libxenstore waiting on a wedged xenstored):
 * one line and out, rather than a hang. */
static void on_deadline(int sig)
{
	static const char msg[] = "xbdsh: no answer within "
		XBD_SH_STR(SH_DEADLINE_S) " s (is xenstored or the sim stuck?)\n";
	ssize_t n;

	(void)sig;
	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(1);
}

void sh_watchdog(bool on)
{
	alarm(on ? SH_DEADLINE_S : 0);
}

void sh_install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a wait in progress returns at once */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_deadline;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------------ */
/* Input without a terminal: our own buffer, so that a wait can tell   */
/* whether the next command has already arrived.                       */

static char in_buf[8192];
static size_t in_len;
static bool in_eof;

/* Next line without its newline (malloc'd), NULL at the end. */
static char *read_plain_line(void)
{
	for (;;) {
		char *nl = memchr(in_buf, '\n', in_len);
		ssize_t n;

		if (nl || in_eof || in_len == sizeof(in_buf)) {
			size_t len = nl ? (size_t)(nl - in_buf) : in_len;
			char *line;

			if (!len && !nl && in_eof)
				return NULL;
			line = strndup(in_buf, len);
			if (nl)
				len++;
			memmove(in_buf, in_buf + len, in_len - len);
			in_len -= len;
			return line;
		}
		n = read(STDIN_FILENO, in_buf + in_len, sizeof(in_buf) - in_len);
		if (n < 0 && errno == EINTR) {
			if (sh_interrupted)
				return NULL;
			continue;
		}
		if (n <= 0)
			in_eof = true;
		else
			in_len += (size_t)n;
	}
}

/* Set while the shell reads its commands from stdin. */
static bool stdin_is_script;

bool sh_watch_stops_on_input(void)
{
	return isatty(STDIN_FILENO) || stdin_is_script;
}

bool sh_wait_key(int timeout_ms)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	struct termios saved, raw;
	bool tty = isatty(STDIN_FILENO);
	bool key = false;
	int r;

	/* `xbdsh stats VM -w 1 -n 10 > log` from cron or a script: stdin
	 * (often /dev/null) is nobody's keyboard, so only -n, a signal or a
	 * real key ends the view.  Piped commands to the shell are another
	 * matter: there the next command arriving ends a watch. */
	if (!tty && !stdin_is_script) {
		poll(NULL, 0, timeout_ms);
		return false;
	}
	if (!tty && (in_len || in_eof))
		return true;
	if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		tty = false;
	}
	r = poll(&pfd, 1, timeout_ms);
	if (r > 0) {
		key = true;
		if (tty) {
			char junk[32];

			/* the key (and the rest of an escape sequence) */
			if (read(STDIN_FILENO, junk, sizeof(junk)) < 0)
				key = errno != EAGAIN;
		}
	}
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	return key;
}

/* ------------------------------------------------------------------ */
/* Words                                                              */

/* Splits line in place on blanks; quotes are not needed by any
 * argument xbdsh takes. */
static int split_words(char *line, char **words, int max)
{
	char *save = NULL, *w;
	int n = 0;

	for (w = strtok_r(line, " \t\r\n", &save); w && n < max;
	     w = strtok_r(NULL, " \t\r\n", &save))
		words[n++] = w;
	return n;
}

static bool is_quit(const char *w)
{
	return !strcmp(w, "quit") || !strcmp(w, "exit") || !strcmp(w, "q");
}

/* ------------------------------------------------------------------ */
/* Completion                                                         */

static struct sh_ctx *complete_ctx;
static char **candidates;
static unsigned nr_candidates;

static void candidates_clear(void)
{
	unsigned i;

	for (i = 0; i < nr_candidates; i++)
		free(candidates[i]);
	free(candidates);
	candidates = NULL;
	nr_candidates = 0;
}

static void candidate_add(const char *s)
{
	char **nc;
	unsigned i;

	for (i = 0; i < nr_candidates; i++)
		if (!strcmp(candidates[i], s))
			return;
	nc = realloc(candidates, (nr_candidates + 1) * sizeof(*nc));
	if (!nc)
		return;
	candidates = nc;
	candidates[nr_candidates] = strdup(s);
	if (candidates[nr_candidates])
		nr_candidates++;
}

static char *candidate_gen(const char *text, int state)
{
	static unsigned next;
	size_t len = strlen(text);

	if (!state)
		next = 0;
	while (next < nr_candidates) {
		const char *c = candidates[next++];

		if (!strncmp(c, text, len))
			return strdup(c);
	}
	return NULL;
}

static void add_vm_candidates(struct sh_ctx *ctx, const struct sh_xbd *x)
{
	struct sh_vm *vms;
	unsigned n, i;

	if (sh_vm_list(ctx, x, &vms, &n))
		return;
	for (i = 0; i < n; i++)
		candidate_add(vms[i].name);
	free(vms);
}

static void add_disk_candidates(struct sh_ctx *ctx, const struct sh_xbd *x,
				const char *vm_name)
{
	struct sh_vm *vms;
	struct sh_sample s;
	unsigned n, i;

	if (sh_vm_list(ctx, x, &vms, &n))
		return;
	for (i = 0; i < n; i++) {
		char id[8];

		snprintf(id, sizeof(id), "%u", vms[i].domid);
		if (strcmp(vms[i].name, vm_name) && strcmp(id, vm_name))
			continue;
		if (sh_sample_take(ctx, x, &vms[i], false, &s) >= 0) {
			unsigned k;

			for (k = 0; k < s.n; k++)
				candidate_add(s.disks[k].vdev);
			sh_sample_free(&s);
		}
		break;
	}
	free(vms);
}

/* Positional arguments before the cursor; an option's value is not one. */
static int positional_before(char **words, int n, const char **vm_word,
			     int vm_arg)
{
	int i, pos = 0;

	for (i = 1; i < n; i++) {
		if (words[i][0] == '-') {
			if (!strcmp(words[i], "-w") || !strcmp(words[i], "-n") ||
			    !strcmp(words[i], "--interval") ||
			    !strcmp(words[i], "--count"))
				i++;
			continue;
		}
		pos++;
		if (pos == vm_arg)
			*vm_word = words[i];
	}
	return pos;
}

static char **sh_complete(const char *text, int start, int end)
{
	static const char *const stat_opts[] = {
		"--json", "--prometheus", "--interval", "--count", NULL,
	};
	char *before, *words[SH_MAX_WORDS];
	const char *vm_word = NULL;
	int n, vm_arg, disk_arg, pos;
	unsigned i;

	(void)end;
	rl_attempted_completion_over = 1; /* never file names */
	candidates_clear();
	before = strndup(rl_line_buffer, (size_t)start);
	if (!before)
		return NULL;
	n = split_words(before, words, SH_MAX_WORDS);
	if (n == 0) {
		for (i = 0; sh_command_names[i]; i++)
			candidate_add(sh_command_names[i]);
	} else if (text[0] == '-' && (!strcmp(words[0], "stats") ||
				      !strcmp(words[0], "watch"))) {
		for (i = 0; stat_opts[i]; i++)
			candidate_add(stat_opts[i]);
	} else {
		sh_command_args(words[0], &vm_arg, &disk_arg);
		pos = positional_before(words, n, &vm_word, vm_arg) + 1;
		if (pos == vm_arg || (pos == disk_arg && vm_word)) {
			struct sh_xbd x;

			sh_watchdog(true);
			if (!sh_xbd_fetch(complete_ctx, "stats", &x)) {
				if (pos == vm_arg)
					add_vm_candidates(complete_ctx, &x);
				else
					add_disk_candidates(complete_ctx, &x,
							    vm_word);
				sh_xbd_free(&x);
			}
			sh_watchdog(false);
		}
	}
	free(before);
	if (!nr_candidates)
		return NULL;
	return rl_completion_matches(text, candidate_gen);
}

/* ------------------------------------------------------------------ */
/* The loop                                                           */

static char *history_path(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;
	char *path;

	if (!home || !*home) {
		pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home || asprintf(&path, "%s/%s", home, SH_HISTORY_FILE) < 0)
		return NULL;
	return path;
}

/* Runs one line; *quit set by quit/exit.  Returns the command's status. */
static int run_line(struct sh_ctx *ctx, char *line, bool *quit)
{
	char *words[SH_MAX_WORDS];
	int n = split_words(line, words, SH_MAX_WORDS);

	if (n == 0 || words[0][0] == '#')
		return 0;
	if (is_quit(words[0])) {
		*quit = true;
		return 0;
	}
	sh_interrupted = 0;
	return sh_run_command(ctx, n, words);
}

static int repl_terminal(struct sh_ctx *ctx)
{
	char *hist = history_path();
	bool quit = false;
	int status = 0;

	complete_ctx = ctx;
	rl_readline_name = "xbdsh";
	rl_attempted_completion_function = sh_complete;
	using_history();
	stifle_history(SH_HISTORY_MAX);
	if (hist)
		read_history(hist); /* none yet is fine */
	printf("xbdsh %s: live statistics of virtual disks; `help` lists "
	       "the commands.\n", XBD_VERSION);
	while (!quit) {
		char *line, *copy;
		HIST_ENTRY *last;
		size_t len;

		sh_interrupted = 0;
		line = readline("xbdsh> ");
		if (!line) {
			putchar('\n');
			break;
		}
		/* completion leaves a trailing blank: not worth keeping */
		len = strlen(line);
		while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		last = history_length ? history_get(history_base +
						    history_length - 1) : NULL;
		if (line[strspn(line, " \t")] &&
		    (!last || strcmp(last->line, line)))
			add_history(line);
		copy = strdup(line);
		if (copy)
			status = run_line(ctx, copy, &quit);
		free(copy);
		free(line);
		fflush(stdout);
	}
	if (hist) {
		if (write_history(hist) != 0)
			xbd_err("%s: cannot save the history", hist);
		free(hist);
	}
	candidates_clear();
	rl_clear_history();
	return status;
}

/* Without a terminal: no prompt, no history; the exit status is 1 if any
 * command failed (2 if any was misused), so a script can check it. */
static int repl_plain(struct sh_ctx *ctx)
{
	bool quit = false;
	int status = 0;
	char *line;

	while (!quit && !sh_interrupted && (line = read_plain_line())) {
		int st = run_line(ctx, line, &quit);

		if (st > status)
			status = st;
		free(line);
		fflush(stdout);
	}
	return status;
}

int sh_repl(struct sh_ctx *ctx)
{
	ctx->interactive = isatty(STDIN_FILENO);
	stdin_is_script = !ctx->interactive;
	xbd_help_prefix = ""; /* "see stats --help": no "xbdsh" in the shell */
	return ctx->interactive ? repl_terminal(ctx) : repl_plain(ctx);
}
