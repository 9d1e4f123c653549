/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbd image: an evidence copy of one of a VM's disks.  Like `xbd
 * attach` it creates a second backend instance of the disk with dom0 as
 * the frontend (src/toolstack.c) and connects xbd's own frontend to it,
 * read-only; then src/imaging.c reads the disk, hashing and writing in
 * the same pass, into a raw file or an E01 (src/imaging_out.c), and a
 * report is written beside the image (FILE.report.txt, .report.json).
 * SIGINT or SIGTERM stops the copy, removes the unfinished image and
 * takes the instance away again.
 */
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/frontend.h"
#include "xbd/image.h"
#include "xbd/imaging.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct imaging_cmd {
	/* options */
	const char *vm_name, *vdev, *output;
	struct xbd_image_out_opts out_opts;
	bool want[XBD_HASH_COUNT];
	bool verify, progress, skip_errors, pause, snapshot;
	char report_txt[PATH_MAX], report_json[PATH_MAX];

	/* state */
	struct xbd_platform *p;
	uint16_t domid;
	char uuid[40];
	struct xbd_vm_disk *disks;    /* all of the VM's (xbd_vm_disks) */
	unsigned ndisks;
	const struct xbd_vm_disk *disk; /* the one imaged */
	struct xbd_attach_instance inst;
	struct xbd_frontend *fe;
	struct xbd_frontend_info info;
	struct xbd_image_out *out;
	sigset_t sigs;
	int signal;                   /* the one that stopped the copy */
	uint64_t t0_ns, last_print_ns;
	bool end_printed;
	char start_utc[32], end_utc[32];
	struct xbd_imaging_result res;
	bool verified, verify_ok;
	struct xbd_vm_pause pst;      /* --pause, --snapshot */
	char snap_store[PATH_MAX];    /* --snapshot: the file cloned */
	char snap_utc[32];
	int snap_fd;                  /* the clone, unnamed */
	struct xbd_image *snap;       /* read instead of the ring */
};

/* How long --pause waits for the requests in flight to be answered. */
#define IMAGE_PAUSE_TIMEOUT_MS 30000

static void image_usage(void)
{
	printf("usage: xbd image VM [--disk VDEV] -o FILE [--format raw|ewf] [--sha1] [--no-md5]\n"
	       "                 [--pause | --snapshot] [--force] [--verify] [--progress]\n"
	       "                 [--skip-errors] [--sparse]\n"
	       "                 [--compression fast|best|none|empty-block] [--threads N]\n"
	       "                 [--case-number S] [--evidence-number S] [--examiner S]\n"
	       "                 [--description S] [--notes S]\n"
	       "Copies one of VM's disks, read-only, through xbd's own frontend into FILE,\n"
	       "computing SHA-256 and MD5 as it reads, and writes FILE.report.txt and\n"
	       "FILE.report.json beside it.\n"
	       "  --disk VDEV          the disk (xvda, ...); needed when VM has several\n"
	       "  -o, --output FILE    the image; refused if it exists, unless --force\n"
	       "  --format raw|ewf     raw (default) or EnCase E01 (FILE gets .E01)\n"
	       "  --sha1               SHA-1 as well\n"
	       "  --no-md5             no MD5 (SHA-256 alone, the fastest)\n"
	       "  --pause              pause the VM for the copy (one moment of the disk):\n"
	       "                       it waits for the requests in flight, and the VM\n"
	       "                       runs again at the end, on error and on SIGINT\n"
	       "  --snapshot           pause only to clone the disk's store (a raw file\n"
	       "                       on XFS reflink=1 or btrfs), then copy the clone\n"
	       "  --force              replace an existing image and its reports\n"
	       "  --verify             read the image back and check its hashes\n"
	       "  --progress           the progress line even when stderr is not a terminal\n"
	       "  --skip-errors        write unreadable sectors as zeros and list them\n"
	       "  --sparse             raw: leave holes where the disk reads zeros\n"
	       "  --compression C      ewf: deflate fast (zlib level 1, the default) or best\n"
	       "                       (9), none, or empty-block (none, but chunks of one\n"
	       "                       repeated byte deflated): ewfacquire's -c levels\n"
	       "  --threads N          ewf: threads that compress (default: one per CPU)\n"
	       "  --case-number S, --evidence-number S, --examiner S, --description S,\n"
	       "  --notes S            ewf: case metadata stored in the E01\n"
	       "Exit status: 0 done; 1 failed (nothing left under FILE's name); 2 usage;\n"
	       "4 done with --skip-errors, but some sectors were unreadable (see the report);\n"
	       "130 stopped by SIGINT, 143 by SIGTERM.\n");
}

/* ------------------------------------------------------------------ */
/* Options                                                            */
/* ------------------------------------------------------------------ */

/* 0: go on; -1: done (help printed); else the exit status. */
static int parse_image(int argc, char **argv, struct imaging_cmd *c)
{
	enum { O_DISK = 256, O_FORMAT, O_SHA1, O_FORCE, O_VERIFY, O_PROGRESS,
	       O_SKIP, O_SPARSE, O_CASE, O_EVIDENCE, O_EXAMINER, O_DESC, O_NOTES,
	       O_PAUSE, O_SNAPSHOT, O_NO_MD5, O_COMPRESSION, O_THREADS };
	static const struct option opts[] = {
		{ "disk", required_argument, NULL, O_DISK },
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "sha1", no_argument, NULL, O_SHA1 },
		{ "force", no_argument, NULL, O_FORCE },
		{ "verify", no_argument, NULL, O_VERIFY },
		{ "progress", no_argument, NULL, O_PROGRESS },
		{ "skip-errors", no_argument, NULL, O_SKIP },
		{ "sparse", no_argument, NULL, O_SPARSE },
		{ "pause", no_argument, NULL, O_PAUSE },
		{ "snapshot", no_argument, NULL, O_SNAPSHOT },
		{ "no-md5", no_argument, NULL, O_NO_MD5 },
		{ "compression", required_argument, NULL, O_COMPRESSION },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "case-number", required_argument, NULL, O_CASE },
		{ "evidence-number", required_argument, NULL, O_EVIDENCE },
		{ "examiner", required_argument, NULL, O_EXAMINER },
		{ "description", required_argument, NULL, O_DESC },
		{ "notes", required_argument, NULL, O_NOTES },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct xbd_image_out_opts *oo = &c->out_opts;
	const char *format = "raw", *compression = NULL;
	bool case_meta = false;
	unsigned long long threads = 0;
	uint32_t devid;
	int ch;

	c->want[XBD_HASH_MD5] = c->want[XBD_HASH_SHA256] = true;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		switch (ch) {
		case O_DISK:
			if (xbd_vdev_to_devid(optarg, &devid)) {
				xbd_usage_err("image", "--disk: expected a disk name such as xvda, got '%s'",
					      optarg);
				return XBD_EXIT_USAGE;
			}
			c->vdev = optarg;
			break;
		case 'o': c->output = optarg; break;
		case O_FORMAT: format = optarg; break;
		case O_SHA1: c->want[XBD_HASH_SHA1] = true; break;
		case O_NO_MD5: c->want[XBD_HASH_MD5] = false; break;
		case O_FORCE: oo->force = true; break;
		case O_VERIFY: c->verify = true; break;
		case O_PROGRESS: c->progress = true; break;
		case O_SKIP: c->skip_errors = true; break;
		case O_SPARSE: oo->sparse = true; break;
		case O_PAUSE: c->pause = true; break;
		case O_SNAPSHOT: c->snapshot = true; break;
		case O_CASE: oo->case_number = optarg; case_meta = true; break;
		case O_EVIDENCE: oo->evidence_number = optarg; case_meta = true; break;
		case O_EXAMINER: oo->examiner = optarg; case_meta = true; break;
		case O_DESC: oo->description = optarg; case_meta = true; break;
		case O_NOTES: oo->notes = optarg; case_meta = true; break;
		case O_COMPRESSION: compression = optarg; case_meta = true; break;
		case O_THREADS:
			if (xbd_parse_uint(optarg, XBD_EWF_MAX_THREADS, &threads) || !threads) {
				xbd_usage_err("image", "--threads: expected 1 to %u, got '%s'",
					      XBD_EWF_MAX_THREADS, optarg);
				return XBD_EXIT_USAGE;
			}
			oo->threads = (unsigned)threads;
			case_meta = true;
			break;
		case 'h':
			image_usage();
			return -1;
		default:
			xbd_opt_err("image", ch, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		xbd_usage_err("image", "missing VM");
		return XBD_EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		xbd_usage_err("image", "unexpected argument '%s'", argv[optind + 1]);
		return XBD_EXIT_USAGE;
	}
	c->vm_name = argv[optind];
	if (!c->output || !*c->output) {
		xbd_usage_err("image", "-o FILE is required");
		return XBD_EXIT_USAGE;
	}
	if (!strcmp(format, "raw")) {
		oo->format = XBD_IMAGE_RAW;
	} else if (!strcmp(format, "ewf")) {
		oo->format = XBD_IMAGE_EWF;
	} else {
		xbd_usage_err("image", "--format: expected raw or ewf, got '%s'", format);
		return XBD_EXIT_USAGE;
	}
	if (case_meta && oo->format != XBD_IMAGE_EWF) {
		xbd_usage_err("image", "the case metadata, --compression and --threads are for --format ewf");
		return XBD_EXIT_USAGE;
	}
	for (ch = 0; compression && ch < XBD_EWF_COMPRESSION_COUNT; ch++)
		if (!strcmp(compression, xbd_ewf_compression_name(ch)))
			break;
	if (compression && ch == XBD_EWF_COMPRESSION_COUNT) {
		xbd_usage_err("image", "--compression: expected fast, best, none or empty-block, got '%s'",
			      compression);
		return XBD_EXIT_USAGE;
	}
	if (compression)
		oo->compression = ch;
	if (c->pause && c->snapshot) {
		xbd_usage_err("image", "--pause (paused for the whole copy) or --snapshot (paused for the clone): one of them");
		return XBD_EXIT_USAGE;
	}
	if (oo->sparse && oo->format != XBD_IMAGE_RAW) {
		xbd_usage_err("image", "--sparse is for --format raw (E01 compresses zeros)");
		return XBD_EXIT_USAGE;
	}
	oo->path = c->output;
	if ((size_t)snprintf(c->report_txt, sizeof(c->report_txt), "%s.report.txt",
			     c->output) >= sizeof(c->report_txt) ||
	    (size_t)snprintf(c->report_json, sizeof(c->report_json), "%s.report.json",
			     c->output) >= sizeof(c->report_json)) {
		xbd_err("%s: name too long", c->output);
		return 1;
	}
	if (!oo->force && (!access(c->report_txt, F_OK) || !access(c->report_json, F_OK))) {
		xbd_err("%s: exists; --force replaces it",
			access(c->report_txt, F_OK) ? c->report_json : c->report_txt);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The VM and its disk                                                */
/* ------------------------------------------------------------------ */

/* The VM's UUID from /local/domain/N/vm ("/vm/UUID", which may hold a
 * uuid node); "" when there is none that looks like one. */
static void read_uuid(struct imaging_cmd *c)
{
	char path[64], *vm = NULL, *u = NULL;
	const char *cand = NULL;
	size_t i;

	snprintf(path, sizeof(path), "/local/domain/%u/vm", c->domid);
	if (xbd_xs_read_str(c->p, path, &vm))
		return;
	if (strlen(vm) < 200) {
		char up[256];

		snprintf(up, sizeof(up), "%s/uuid", vm);
		if (!xbd_xs_read_str(c->p, up, &u))
			cand = u;
		else if (!strncmp(vm, "/vm/", 4))
			cand = vm + 4;
	}
	if (cand && strlen(cand) == 36) {
		for (i = 0; i < 36; i++)
			if (!(i == 8 || i == 13 || i == 18 || i == 23 ? cand[i] == '-'
								      : !!strchr("0123456789abcdefABCDEF", cand[i])))
				break;
		if (i == 36)
			snprintf(c->uuid, sizeof(c->uuid), "%s", cand);
	}
	free(u);
	free(vm);
}

/* The --disk one, or the VM's only disk. */
static int choose_disk(struct imaging_cmd *c)
{
	char names[256] = "";
	unsigned n, i, found = UINT_MAX, candidates = 0;
	uint32_t id = 0;
	int err = xbd_vm_disks(c->p, c->domid, &c->disks, &c->ndisks);
	const struct xbd_vm_disk *all = c->disks;

	if (err) {
		xbd_err("%s: cannot list its disks: %s", c->vm_name, xbd_strerror(err));
		c->disks = NULL;
		c->ndisks = 0;
		return err;
	}
	n = c->ndisks;
	if (c->vdev)
		xbd_vdev_to_devid(c->vdev, &id);
	for (i = 0; i < n; i++) {
		size_t l = strlen(names);

		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", all[i].vdev);
		if (c->vdev ? all[i].devid == id
			    : !(all[i].device_type && !strcmp(all[i].device_type, "cdrom"))) {
			found = i;
			candidates++;
		}
	}
	if (c->vdev && found == UINT_MAX) {
		xbd_err("%s: no disk %s (it has: %s)", c->vm_name, c->vdev, n ? names : "none");
		err = -ENOENT;
	} else if (!c->vdev && candidates == 0) {
		xbd_err("%s: has no disks", c->vm_name);
		err = -ENOENT;
	} else if (!c->vdev && candidates > 1) {
		xbd_err("%s: has several disks (%s); name one with --disk", c->vm_name, names);
		err = -EINVAL;
	} else {
		c->disk = &all[found];
	}
	return err;
}

/* Our backend instance of the disk and the frontend on it, read-only. */
static int connect_disk(struct imaging_cmd *c)
{
	struct xbd_proc self;
	char pid[24], start[24], name[96];
	const char *fe_extra[] = { XBD_XS_PID_NODE, pid, XBD_XS_PID_START_NODE, start, NULL };
	struct xbd_attach_instance_opts o = {
		.vm_name = c->vm_name, .rw = false,
		.sim = !strcmp(xbd_platform_name(c->p), "sim"),
		.fe_extra = fe_extra, .clear_stale = xbd_attach_clear_stale,
	};
	struct xbd_frontend_config cfg = { .max_ring_order = -1 };
	int err;

	/* what xbd_attach_clear_stale() reads back after a kill -9 */
	if (xbd_proc_self(&self))
		self = (struct xbd_proc){ .pid = getpid() };
	snprintf(pid, sizeof(pid), "%ld", (long)self.pid);
	snprintf(start, sizeof(start), "%llu", self.start);
	err = xbd_attach_instance_create(c->p, c->disk, &o, &c->inst);
	if (err)
		return err;
	snprintf(name, sizeof(name), "%s/%s", c->vm_name, c->disk->vdev);
	cfg.frontend_path = c->inst.fe_path;
	cfg.backend_path = c->inst.be_path;
	cfg.backend_domid = c->inst.be_domid;
	cfg.name = name;
	err = xbd_frontend_connect(c->p, &cfg, &c->fe);
	if (err)
		return err;
	xbd_frontend_get_info(c->fe, &c->info);
	return 0;
}

/* The VM runs again (our record of the pause goes first). */
static void unpause_vm(struct imaging_cmd *c)
{
	xbd_vm_unpause(c->p, c->vm_name, &c->pst);
}

/* Everything connect_disk made, in reverse; safe when half done. */
static void disconnect_disk(struct imaging_cmd *c)
{
	unpause_vm(c);
	xbd_frontend_close(c->fe);
	c->fe = NULL;
	if (c->p) {
		xbd_attach_instance_destroy(c->p, &c->inst);
		xbd_xs_rm_if_empty(c->p, "/local/domain/0/device");
	}
}

/* ------------------------------------------------------------------ */
/* Progress and signals                                               */
/* ------------------------------------------------------------------ */

static void fmt_bytes(char *buf, size_t len, double v)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned i = 0;

	while (v >= 1024 && i < XBD_ARRAY_SIZE(u) - 1) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

/* A SIGINT, SIGTERM or SIGHUP waiting (recorded in c->signal). */
static bool took_signal(struct imaging_cmd *c)
{
	struct timespec zero = { 0, 0 };
	int sig = sigtimedwait(&c->sigs, NULL, &zero);

	if (sig > 0)
		c->signal = sig;
	return sig > 0;
}

static int stop_asked(void *arg)
{
	return took_signal(arg);
}

static int tick(void *arg, uint64_t done)
{
	struct imaging_cmd *c = arg;
	uint64_t now = xbd_now_ns(), size = c->info.sectors * 512;
	bool tty = isatty(STDERR_FILENO), end = done == size;

	/* all read: a signal now is run()'s, before the image is committed */
	if (!end && took_signal(c)) {
		if (tty && c->last_print_ns)
			fputc('\n', stderr);
		return 1;
	}
	if (!(tty || c->progress))
		return 0;
	/* a terminal's line is redrawn; a log gets one line a second */
	if (!end && now - c->last_print_ns < (tty ? 200000000ull : 1000000000ull))
		return 0;
	if (end && (c->end_printed || done == 0))
		return 0;
	c->end_printed = end;
	{
		double secs = (double)(now - c->t0_ns) / 1e9, rate = secs > 0 ? done / secs : 0;
		char d[24], s[24], r[24], eta[24] = "--:--";

		fmt_bytes(d, sizeof(d), (double)done);
		fmt_bytes(s, sizeof(s), (double)size);
		fmt_bytes(r, sizeof(r), rate);
		if (rate > 0) {
			unsigned long left = (unsigned long)((double)(size - done) / rate);

			snprintf(eta, sizeof(eta), "%lu:%02lu:%02lu", left / 3600,
				 left / 60 % 60, left % 60);
		}
		fprintf(stderr, "%s%s of %s (%.0f%%), %s/s, ETA %s%s%s",
			tty ? "\r" : "", d, s, size ? 100.0 * done / size : 100.0, r, eta,
			tty ? "\033[K" : "", tty && !end ? "" : "\n");
		fflush(stderr);
	}
	c->last_print_ns = now;
	return 0;
}

static void utc_now(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------------ */
/* The report                                                         */
/* ------------------------------------------------------------------ */

/* The whole command line as run, from /proc (global options too). */
static json_object *command_line(void)
{
	json_object *a = json_object_new_array();
	char buf[8192];
	ssize_t n = -1;
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(buf + i) + 1) {
		buf[n] = '\0';
		json_object_array_add(a, json_object_new_string(buf + i));
	}
	return a;
}

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static double secs_between(unsigned long long a, unsigned long long b)
{
	return b > a ? (double)(b - a) / 1e9 : 0;
}

static json_object *pause_json(const struct xbd_vm_pause *ps)
{
	json_object *o = json_object_new_object();

	add_str(o, "paused_utc", ps->paused_utc);
	add_str(o, "unpaused_utc", ps->unpaused_utc);
	json_object_object_add(o, "seconds", json_object_new_double(
		secs_between(ps->pause_ns, ps->unpause_ns)));
	json_object_object_add(o, "idle_after_seconds", json_object_new_double(
		secs_between(ps->pause_ns, ps->idle_ns)));
	json_object_object_add(o, "rings_checked", json_object_new_int((int)ps->rings_checked));
	add_str(o, "rings_unchecked", ps->unchecked[0] ? ps->unchecked : NULL);
	json_object_object_add(o, "already_paused", json_object_new_boolean(ps->was_paused));
	return o;
}

static json_object *report_json(struct imaging_cmd *c, const char *image)
{
	const struct xbd_image_out_opts *oo = &c->out_opts;
	json_object *r = json_object_new_object(), *vm = json_object_new_object(),
		    *disk = json_object_new_object(), *be = json_object_new_object(),
		    *img = json_object_new_object(), *h = json_object_new_object(),
		    *errs = json_object_new_array();
	char host[256] = "";
	unsigned i;
	int k;

	gethostname(host, sizeof(host) - 1);
	add_str(r, "tool", "xbd");
	add_str(r, "xbd_version", XBD_VERSION);
	json_object_object_add(r, "command_line", command_line());
	add_str(r, "host", host);
	add_str(r, "platform", xbd_platform_name(c->p));
	add_str(vm, "name", c->vm_name);
	json_object_object_add(vm, "domid", json_object_new_int(c->domid));
	add_str(vm, "uuid", c->uuid[0] ? c->uuid : NULL);
	json_object_object_add(r, "vm", vm);
	add_str(disk, "vdev", c->disk->vdev);
	add_u64(disk, "sectors", c->info.sectors);
	json_object_object_add(disk, "sector_size", json_object_new_int((int)c->info.sector_size));
	add_u64(disk, "size_bytes", c->info.sectors * 512);
	add_str(be, "type", c->disk->be_type);
	add_str(be, "served_by", c->inst.backend_kind);
	json_object_object_add(be, "domid", json_object_new_int(c->disk->be_domid));
	add_str(be, "params", c->disk->params);
	add_str(be, "kind", c->disk->type);
	add_str(be, "mode", c->disk->mode);
	add_str(be, "path", c->disk->be_path);
	json_object_object_add(disk, "backend", be);
	json_object_object_add(r, "disk", disk);
	add_str(img, "path", image);
	add_str(img, "format", oo->format == XBD_IMAGE_EWF ? "ewf" : "raw");
	json_object_object_add(img, "sparse", json_object_new_boolean(oo->sparse));
	if (oo->format == XBD_IMAGE_EWF) {
		json_object *cs = json_object_new_object();

		add_str(cs, "case_number", oo->case_number);
		add_str(cs, "evidence_number", oo->evidence_number);
		add_str(cs, "examiner", oo->examiner);
		add_str(cs, "description", oo->description);
		add_str(cs, "notes", oo->notes);
		json_object_object_add(img, "case", cs);
		add_str(img, "compression", xbd_ewf_compression_name(oo->compression));
	}
	json_object_object_add(r, "image", img);
	add_str(r, "start_utc", c->start_utc);
	add_str(r, "end_utc", c->end_utc);
	add_u64(r, "bytes_read", c->res.bytes);
	for (k = 0; k < XBD_HASH_COUNT; k++)
		if (c->want[k])
			add_str(h, xbd_hash_name(k), c->res.hex[k]);
	json_object_object_add(r, "hashes", h);
	json_object_object_add(r, "skip_errors", json_object_new_boolean(c->skip_errors));
	add_u64(r, "read_error_sectors", c->res.bad_sectors);
	for (i = 0; i < c->res.nbad; i++) {
		json_object *e = json_object_new_object();

		add_u64(e, "start", c->res.bad[i].start);
		add_u64(e, "end", c->res.bad[i].end);
		json_object_array_add(errs, e);
	}
	json_object_object_add(r, "read_errors", errs);
	json_object_object_add(r, "verified", c->verified ?
				   json_object_new_boolean(c->verify_ok) : NULL);
	json_object_object_add(r, "paused", json_object_new_boolean(c->pause || c->snapshot));
	json_object_object_add(r, "pause", c->pause || c->snapshot ? pause_json(&c->pst) : NULL);
	if (c->snapshot) {
		json_object *sn = json_object_new_object();

		add_str(sn, "kind", "reflink");
		add_str(sn, "store", c->snap_store);
		add_str(sn, "taken_utc", c->snap_utc);
		json_object_object_add(r, "snapshot", sn);
	} else {
		json_object_object_add(r, "snapshot", NULL);
	}
	return r;
}

static void report_text(FILE *f, json_object *r, const struct imaging_cmd *c,
			const char *image)
{
	json_object *cl = json_object_object_get(r, "command_line");
	size_t i, n = json_object_array_length(cl);
	int k;

	fprintf(f, "xbd image report\n\n");
	fprintf(f, "VM:            %s (domid %u, UUID %s)\n", c->vm_name, c->domid,
		c->uuid[0] ? c->uuid : "unknown");
	fprintf(f, "Disk:          %s, %llu sectors of 512 bytes (%llu bytes), sector size %u\n",
		c->disk->vdev, (unsigned long long)c->info.sectors,
		(unsigned long long)c->info.sectors * 512, c->info.sector_size);
	fprintf(f, "Backend:       %s in domain %u (%s), params %s, type %s, mode %s\n",
		c->disk->be_type, c->disk->be_domid, c->disk->be_path,
		c->disk->params ? c->disk->params : "-", c->disk->type ? c->disk->type : "-",
		c->disk->mode ? c->disk->mode : "-");
	fprintf(f, "Read through:  xbd's frontend on a second instance served by %s\n",
		c->inst.backend_kind);
	fprintf(f, "Image:         %s (%s%s%s)\n", image,
		c->out_opts.format == XBD_IMAGE_EWF ? "E01, compression " : "raw",
		c->out_opts.format == XBD_IMAGE_EWF ?
		xbd_ewf_compression_name(c->out_opts.compression) : "",
		c->out_opts.sparse ? ", sparse" : "");
	fprintf(f, "Started:       %s\n", c->start_utc);
	fprintf(f, "Ended:         %s\n", c->end_utc);
	fprintf(f, "Host:          %s\n", json_object_get_string(json_object_object_get(r, "host")));
	fprintf(f, "xbd version:   %s (platform %s)\n", XBD_VERSION, xbd_platform_name(c->p));
	fprintf(f, "Command line: ");
	for (i = 0; i < n; i++)
		fprintf(f, " %s", json_object_get_string(json_object_array_get_idx(cl, i)));
	fprintf(f, "\nBytes read:    %llu\n", (unsigned long long)c->res.bytes);
	for (k = 0; k < XBD_HASH_COUNT; k++)
		if (c->want[k])
			fprintf(f, "%-15s%s\n", k == XBD_HASH_MD5 ? "MD5:" :
				k == XBD_HASH_SHA1 ? "SHA-1:" : "SHA-256:", c->res.hex[k]);
	fprintf(f, "Read errors:   %llu sectors%s\n", (unsigned long long)c->res.bad_sectors,
		c->res.nbad ? " (written as zeros; 512-byte sector numbers):" : "");
	for (i = 0; i < c->res.nbad; i++)
		fprintf(f, "               %llu-%llu\n", (unsigned long long)c->res.bad[i].start,
			(unsigned long long)c->res.bad[i].end);
	fprintf(f, "Verified:      %s\n", !c->verified ? "not asked (--verify)" :
		c->verify_ok ? "yes, the image read back has the same hashes" : "NO: the image read back differs");
	if (!c->pause && !c->snapshot) {
		fprintf(f, "Paused:        no (the VM ran during the copy)\n");
		return;
	}
	if (c->snapshot)
		fprintf(f, "Snapshot:      reflink clone of %s taken at %s; the copy\n"
			   "               read the clone while the VM ran\n",
			c->snap_store, c->snap_utc);
	fprintf(f, "Paused:        yes, from %s to %s (%.3f s); no request in flight\n"
		   "               after %.3f s on %u ring%s%s%s\n",
		c->pst.paused_utc, c->pst.unpaused_utc,
		secs_between(c->pst.pause_ns, c->pst.unpause_ns),
		secs_between(c->pst.pause_ns, c->pst.idle_ns), c->pst.rings_checked,
		c->pst.rings_checked == 1 ? "" : "s",
		c->pst.unchecked[0] ? "; not seen: " : "", c->pst.unchecked);
	if (c->pst.was_paused)
		fprintf(f, "               (it was paused before, and that pause stays)\n");
}

/* Writes NAME.tmp, then renames it: a report is whole or absent. */
static int write_report(const char *name, json_object *r, const struct imaging_cmd *c,
			const char *image)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	int err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	f = fopen(tmp, "we");
	if (!f) {
		xbd_err("%s: %s", tmp, strerror(errno));
		return -errno;
	}
	if (c)
		report_text(f, r, c, image);
	else
		fprintf(f, "%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
	if (ferror(f) | fclose(f))
		err = -EIO;
	if (!err && rename(tmp, name))
		err = -errno;
	if (err) {
		xbd_err("%s: cannot write: %s", name, xbd_strerror(err));
		unlink(tmp);
	}
	return err;
}

static int write_reports(struct imaging_cmd *c)
{
	const char *image = xbd_image_out_name(c->out);
	json_object *r = report_json(c, image);
	int err = write_report(c->report_json, r, NULL, image);

	if (!err)
		err = write_report(c->report_txt, r, c, image);
	json_object_put(r);
	return err;
}

/* ------------------------------------------------------------------ */
/* Imaging                                                            */
/* ------------------------------------------------------------------ */

static int verify_image(struct imaging_cmd *c)
{
	char hex[XBD_HASH_COUNT][2 * XBD_HASH_MAX_BYTES + 1];
	const char *image = xbd_image_out_name(c->out);
	uint64_t bytes;
	int k, err;

	/* the progress line again, for the read-back */
	c->t0_ns = xbd_now_ns();
	c->last_print_ns = 0;
	c->end_printed = false;
	err = xbd_image_verify(c->out_opts.format, image, c->want, hex, &bytes, tick, c);
	if (err == -EINTR)
		xbd_err("%s: verification stopped by %s; the image is complete, but has no report",
			image, strsignal(c->signal));
	if (err)
		return err;
	c->verified = true;
	c->verify_ok = bytes == c->info.sectors * 512;
	for (k = 0; k < XBD_HASH_COUNT; k++)
		if (c->want[k] && strcmp(hex[k], c->res.hex[k]))
			c->verify_ok = false;
	if (!c->verify_ok)
		xbd_err("%s: verification FAILED: the image read back does not have the hashes computed while reading",
			image);
	return 0;
}

static int copy(struct imaging_cmd *c)
{
	struct xbd_imaging_opts io = {
		.fe = c->fe, .src = c->snap, .size = c->info.sectors * 512,
		.sector_size = c->info.sector_size, .skip_errors = c->skip_errors,
		.out = c->out, .tick = tick, .tick_arg = c,
	};
	int err;

	memcpy(io.want, c->want, sizeof(io.want));
	c->t0_ns = xbd_now_ns();
	err = xbd_imaging_run(&io, &c->res);
	utc_now(c->end_utc, sizeof(c->end_utc));
	if (err == -EINTR)
		xbd_err("%s: stopped by %s; the unfinished image is removed", c->output,
			strsignal(c->signal));
	else if (err == -EIO && !c->res.out_failed && !xbd_frontend_status(c->fe))
		xbd_err("%s/%s: sector %llu cannot be read; stopped (--skip-errors writes zeros instead)",
			c->vm_name, c->disk->vdev, (unsigned long long)c->res.stop_sector);
	else if (err)
		xbd_err("%s/%s: imaging failed: %s", c->vm_name, c->disk->vdev,
			xbd_strerror(err));
	return err;
}

/* The VM paused, the pause recorded beside our instance (what the
 * cleanup of a killed process undoes, xbd_attach_clear_stale), and its
 * rings idle. */
static int pause_vm(struct imaging_cmd *c)
{
	int err = xbd_vm_pause(c->p, c->vm_name, c->domid, c->inst.fe_path,
			       IMAGE_PAUSE_TIMEOUT_MS, stop_asked, c, &c->pst);

	if (err == -EINTR)
		xbd_err("%s: stopped by %s; the unfinished image is removed", c->output,
			strsignal(c->signal));
	return err;
}

/* --snapshot: paused only while the store is cloned; the copy then
 * reads the clone, which has no name and goes with its descriptor. */
static int take_snapshot(struct imaging_cmd *c)
{
	char what[96], fdpath[64];
	int err;

	snprintf(what, sizeof(what), "%s/%s", c->vm_name, c->disk->vdev);
	err = xbd_snapshot_prepare(c->snap_store, what, &c->snap_fd);
	if (err)
		return err;
	err = pause_vm(c);
	if (err)
		return err;
	err = xbd_snapshot_clone(c->snap_store, c->snap_fd, what);
	utc_now(c->snap_utc, sizeof(c->snap_utc));
	unpause_vm(c);
	if (err)
		return err;
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", c->snap_fd);
	err = xbd_image_open_raw(fdpath, true, &c->snap);
	if (err) {
		xbd_err("%s: --snapshot: cannot open the clone: %s", what, xbd_strerror(err));
		return err;
	}
	if (c->snap->size < c->info.sectors * 512) {
		xbd_err("%s: --snapshot: the clone of %s has %llu bytes, the disk %llu", what,
			c->snap_store, (unsigned long long)c->snap->size,
			(unsigned long long)c->info.sectors * 512);
		return -EIO;
	}
	return 0;
}

static int run(struct imaging_cmd *c)
{
	const uint8_t *md5, *sha1;
	int err;

	err = xbd_cli_open_platform(&c->p);
	if (err)
		return err;
	err = xbd_domain_lookup(c->p, c->vm_name, &c->domid);
	if (err) {
		xbd_err("%s: no such domain", c->vm_name);
		return err;
	}
	if (c->domid == xbd_platform_self_domid(c->p)) {
		xbd_err("%s: that is this domain; image its devices directly", c->vm_name);
		return -EINVAL;
	}
	read_uuid(c);
	err = choose_disk(c);
	if (err)
		return err;
	if (c->snapshot) {
		char what[96];

		snprintf(what, sizeof(what), "%s/%s", c->vm_name, c->disk->vdev);
		err = xbd_snapshot_store(c->disk, xbd_platform_self_domid(c->p), what,
					 c->snap_store, sizeof(c->snap_store));
		if (err)
			return err;
	}
	err = connect_disk(c);
	if (err)
		return err;
	c->out_opts.size = c->info.sectors * 512;
	c->out_opts.sector_size = c->info.sector_size;
	err = xbd_image_out_open(&c->out_opts, &c->out);
	if (err)
		return err;
	if (c->pause)
		err = pause_vm(c);
	else if (c->snapshot)
		err = take_snapshot(c);
	if (err)
		return err;
	utc_now(c->start_utc, sizeof(c->start_utc));
	err = copy(c);
	disconnect_disk(c);
	if (err)
		return err;
	if (took_signal(c)) {
		xbd_err("%s: stopped by %s; the unfinished image is removed", c->output,
			strsignal(c->signal));
		return -EINTR;
	}
	md5 = c->want[XBD_HASH_MD5] ? c->res.digest[XBD_HASH_MD5] : NULL;
	sha1 = c->want[XBD_HASH_SHA1] ? c->res.digest[XBD_HASH_SHA1] : NULL;
	err = xbd_image_out_add_errors(c->out, c->res.bad, c->res.nbad);
	if (!err)
		err = xbd_image_out_commit(c->out, md5, sha1);
	if (!err && c->verify)
		err = verify_image(c);
	if (!err)
		err = write_reports(c);
	return err;
}

static int image_run(int argc, char **argv)
{
	static struct imaging_cmd c; /* one per process */
	int err, k;

	memset(&c, 0, sizeof(c));
	c.snap_fd = -1;
	xbd_attach_instance_init(&c.inst);
	err = parse_image(argc, argv, &c);
	if (err)
		return err < 0 ? 0 : err;
	/* every thread inherits the mask; the copy's tick takes them */
	sigemptyset(&c.sigs);
	sigaddset(&c.sigs, SIGINT);
	sigaddset(&c.sigs, SIGTERM);
	sigaddset(&c.sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &c.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = run(&c);
	disconnect_disk(&c);
	if (!err) {
		printf("%s: %llu bytes from %s/%s\n", xbd_image_out_name(c.out),
		       (unsigned long long)c.res.bytes, c.vm_name, c.disk->vdev);
		for (k = 0; k < XBD_HASH_COUNT; k++)
			if (c.want[k])
				printf("%s %s\n", xbd_hash_name(k), c.res.hex[k]);
		printf("report: %s\n", c.report_txt);
		if (c.res.bad_sectors)
			xbd_err("%s/%s: %llu unreadable sectors written as zeros (listed in %s)",
				c.vm_name, c.disk->vdev, (unsigned long long)c.res.bad_sectors,
				c.report_txt);
	}
	xbd_image_out_close(c.out);
	if (c.snap)
		xbd_image_close(c.snap);
	if (c.snap_fd >= 0)
		close(c.snap_fd);
	xbd_platform_close(c.p);
	xbd_vm_disks_free(c.disks, c.ndisks);
	xbd_imaging_result_free(&c.res);
	if (c.signal)
		return 128 + c.signal;
	if (err || (c.verified && !c.verify_ok))
		return 1;
	return c.res.bad_sectors ? XBD_EXIT_READ_ERRORS : 0;
}

const struct xbd_cmd xbd_cmd_image = {
	.name = "image",
	.usage = "image VM [--disk VDEV] -o FILE [--format raw|ewf] [--verify]",
	.summary = "copy a VM's disk into a hashed raw or E01 image, with a report",
	.run = image_run,
};
