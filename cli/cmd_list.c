/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbd list: every disk `xbd serve` serves and `xbd attach` attaches on
 * this host, from xenstore (xbd's own backend type, and attach's
 * records), each with its state ("dead" once its process is gone, which
 * only a PID with its start time tells) and, for the request counts,
 * from each process's control socket, whose replies are trusted for
 * nothing: a field missing, null or of another type is unknown.
 */
#include "xbd/backend.h"
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/ctl.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <getopt.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Requests served so far, from the control socket of the process
 * serving backend_path (-1 when it does not answer or says nothing
 * usable). */
static long long ctl_requests(struct xbd_ctl_reply *replies, unsigned n,
			      const char *backend_path)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct json_object *devs = replies[i].err ? NULL :
			xbd_ctl_get_array(replies[i].doc, "devices");
		size_t j;

		for (j = 0; devs && j < json_object_array_length(devs); j++) {
			struct json_object *dev = json_object_array_get_idx(devs, j);
			const char *path = xbd_ctl_get_str(dev, "backend_path");
			struct json_object *reqs = xbd_ctl_get_object(dev, "requests");
			long long total = 0;

			if (!path || strcmp(path, backend_path))
				continue;
			if (!reqs)
				return -1;
			json_object_object_foreach(reqs, key, val) {
				bool known;
				uint64_t v = xbd_ctl_get_u64(val, NULL, &known);

				if (!strcmp(key, "indirect"))
					continue;
				if (!known)
					return -1;
				total += (long long)v;
			}
			return total;
		}
	}
	return -1;
}

/* dir/node (dir alone when node is NULL), or a copy of dflt. */
static char *read_or(struct xbd_platform *p, const char *dir, const char *node,
		     const char *dflt)
{
	char path[256], *v = NULL;

	snprintf(path, sizeof(path), "%s%s%s", dir, node ? "/" : "", node ? node : "");
	if (xbd_xs_read_str(p, path, &v))
		v = strdup(dflt);
	return v;
}

/* One disk of `xbd list`: one `xbd serve` or one disk of an `xbd attach`,
 * as xenstore and its process tell it. */
struct list_row {
	const char *kind;       /* "serve", "attach" */
	char *vm, *domid, *state, *mode, *fmt, *pid, *params, *mount;
	char vdev[16];
	bool dead, detaching;   /* its process is gone; going lazily */
	long long requests;     /* -1: unknown */
};

static void row_free(struct list_row *r)
{
	free(r->vm);
	free(r->domid);
	free(r->state);
	free(r->mode);
	free(r->fmt);
	free(r->pid);
	free(r->params);
	free(r->mount);
}

static const char *row_state(const struct list_row *r)
{
	unsigned long long st;

	if (r->dead)
		return "dead";
	if (r->detaching)
		return "detaching";
	if (xbd_parse_uint(r->state, XenbusStateReconfigured, &st))
		st = XenbusStateUnknown;
	return xbd_xenbus_state_name((enum xenbus_state)st);
}

static void list_print_text(const struct list_row *r, bool header)
{
	char reqs[24] = "-";

	if (header)
		printf("%-12s %5s %-6s %-12s %-4s %-6s %7s %10s %-6s  %s\n", "VM",
		       "DOMID", "VDEV", "STATE", "MODE", "FORMAT", "PID",
		       "REQUESTS", "KIND", "IMAGE/MOUNT");
	if (r->requests >= 0)
		snprintf(reqs, sizeof(reqs), "%lld", r->requests);
	printf("%-12s %5s %-6s %-12s %-4s %-6s %7s %10s %-6s  %s\n", r->vm, r->domid,
	       r->vdev, row_state(r), r->mode, r->fmt, r->pid, reqs, r->kind,
	       strcmp(r->kind, "attach") ? r->params : r->mount);
}

/* A number, or null when the node held none. */
static struct json_object *json_number_or_null(const char *s)
{
	unsigned long long v;

	return xbd_parse_uint(s, INT64_MAX, &v) ? NULL :
						 json_object_new_int64((int64_t)v);
}

static struct json_object *json_string_or_null(const char *s)
{
	return strcmp(s, "-") ? json_object_new_string(s) : NULL;
}

static void list_add_json(struct json_object *arr, const struct list_row *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "kind", json_object_new_string(r->kind));
	json_object_object_add(o, "vm", json_string_or_null(r->vm));
	json_object_object_add(o, "domid", json_number_or_null(r->domid));
	json_object_object_add(o, "vdev", json_object_new_string(r->vdev));
	json_object_object_add(o, "state", json_object_new_string(row_state(r)));
	json_object_object_add(o, "mode", json_string_or_null(r->mode));
	json_object_object_add(o, "format", json_string_or_null(r->fmt));
	json_object_object_add(o, "pid", json_number_or_null(r->pid));
	json_object_object_add(o, "requests", r->requests >= 0 ?
			       json_object_new_int64(r->requests) : NULL);
	json_object_object_add(o, "image", json_string_or_null(r->params));
	json_object_object_add(o, "mount", json_string_or_null(r->mount));
	json_object_array_add(arr, o);
}

/* Whether the process a device directory names is gone; a directory
 * that names none has no process of ours to judge. */
static bool owner_dead(struct xbd_platform *p, const char *dir)
{
	struct xbd_proc proc;

	return !xbd_xs_read_proc(p, dir, &proc) && !xbd_proc_alive(&proc);
}

/* The row of the disk `xbd serve` serves at be (domid: the VM's). */
static void serve_row(struct xbd_platform *p, const char *be, const char *domid,
		      const char *id, struct list_row *r)
{
	unsigned long long devid;
	char name_path[64];

	r->kind = "serve";
	snprintf(name_path, sizeof(name_path), "/local/domain/%s/name", domid);
	r->vm = read_or(p, name_path, NULL, "-");
	r->domid = strdup(domid);
	if (xbd_parse_uint(id, UINT32_MAX, &devid) ||
	    xbd_devid_to_vdev((uint32_t)devid, r->vdev, sizeof(r->vdev)))
		snprintf(r->vdev, sizeof(r->vdev), "%s", id);
	r->state = read_or(p, be, "state", "0");
	r->mode = read_or(p, be, "mode", "-");
	r->fmt = read_or(p, be, "xbd-format", "-");
	r->pid = read_or(p, be, XBD_XS_PID_NODE, "-");
	r->params = read_or(p, be, "params", "-");
	r->mount = strdup("-");
	r->dead = owner_dead(p, be);
}

/* The row of one disk of an `xbd attach` (its record, fe). */
static void attach_row(struct xbd_platform *p, const struct xbd_attach_record *e,
		       struct list_row *r)
{
	char *vdev = read_or(p, e->fe_path, XBD_ATTACH_VDEV_NODE, "-"), *be;

	r->kind = "attach";
	r->vm = read_or(p, e->fe_path, XBD_ATTACH_VM_NODE, "-");
	r->domid = read_or(p, e->fe_path, XBD_ATTACH_DOMID_NODE, "-");
	snprintf(r->vdev, sizeof(r->vdev), "%s", vdev ? vdev : "-");
	free(vdev);
	r->state = read_or(p, e->fe_path, "state", "0");
	be = read_or(p, e->fe_path, "backend", "-");
	/* the VM's storage, as our instance of its backend names it */
	r->mode = be ? read_or(p, be, "mode", "-") : NULL;
	r->params = be ? read_or(p, be, "params", "-") : NULL;
	free(be);
	r->fmt = strdup("-");
	r->pid = read_or(p, e->fe_path, XBD_XS_PID_NODE, "-");
	r->mount = strdup(e->mount);
	r->dead = !xbd_proc_alive(&e->proc);
	r->detaching = e->detaching;
}

static int parse_list(int argc, char **argv, bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			*json = true;
			break;
		case 'h':
			printf("usage: xbd list [--json]\n"
			       "Shows every disk xbd serves (`xbd serve`) or attaches (`xbd attach`)\n"
			       "on this host, one per line under a header (nothing at all when there\n"
			       "are none), each with its state; one whose process was killed is\n"
			       "\"dead\" (`xbd detach` removes it).  --json prints one JSON array of\n"
			       "objects instead.\n");
			return -1;
		default:
			xbd_opt_err("list", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		xbd_usage_err("list", "takes no arguments");
		return XBD_EXIT_USAGE;
	}
	return 0;
}

/* Prints r (or adds it to arr); -ENOMEM when a string could not be
 * had. */
static int show_row(struct list_row *r, struct json_object *arr, unsigned *shown,
		    struct xbd_ctl_reply *replies, unsigned nreplies,
		    const char *be_path)
{
	int err = 0;

	r->requests = r->dead ? -1 : ctl_requests(replies, nreplies, be_path);
	if (!r->vm || !r->domid || !r->state || !r->mode || !r->fmt || !r->pid ||
	    !r->params || !r->mount) {
		xbd_err("list: out of memory");
		err = -ENOMEM;
	} else if (arr) {
		list_add_json(arr, r);
	} else {
		list_print_text(r, *shown == 0);
	}
	(*shown)++;
	row_free(r);
	return err;
}

static int cmd_list_run(int argc, char **argv)
{
	struct xbd_platform *p;
	struct xbd_ctl_reply *replies = NULL;
	struct xbd_attach_record *att = NULL;
	struct json_object *arr = NULL;
	unsigned nreplies = 0, nfe = 0, natt = 0, i, j, shown = 0;
	char type_dir[96], **fes = NULL;
	bool json = false;
	int err;

	err = parse_list(argc, argv, &json);
	if (err)
		return err < 0 ? 0 : err;
	if (xbd_cli_open_platform(&p))
		return 1;
	snprintf(type_dir, sizeof(type_dir), "/local/domain/%u/backend/%s",
		 xbd_platform_self_domid(p), XBD_BACKEND_TYPE);
	err = xbd_xs_directory(p, XBD_XS_NO_TXN, type_dir, &fes, &nfe);
	if (err == -ENOENT) {
		err = 0; /* nothing served yet */
	} else if (err) {
		xbd_err("%s: %s", type_dir, xbd_strerror(err));
		xbd_platform_close(p);
		return 1;
	}
	err = xbd_attach_records(p, NULL, &att, &natt);
	if (err) {
		xbd_err("%s: %s", XBD_ATTACH_FE_DIR, xbd_strerror(err));
		natt = 0;
		err = 0;
	}
	if ((nfe || natt) && xbd_ctl_query_all(NULL, "stats", XBD_CTL_TIMEOUT_MS,
					       &replies, &nreplies))
		nreplies = 0;
	if (json && !(arr = json_object_new_array())) {
		xbd_err("list: out of memory");
		err = -ENOMEM;
	}
	for (i = 0; !err && i < nfe; i++) {
		char dir[128], **ids = NULL;
		unsigned nid = 0;

		snprintf(dir, sizeof(dir), "%s/%s", type_dir, fes[i]);
		if (xbd_xs_directory(p, XBD_XS_NO_TXN, dir, &ids, &nid))
			continue;
		for (j = 0; !err && j < nid; j++) {
			struct list_row r = { 0 };
			char be[192];

			snprintf(be, sizeof(be), "%s/%s", dir, ids[j]);
			serve_row(p, be, fes[i], ids[j], &r);
			err = show_row(&r, arr, &shown, replies, nreplies, be);
		}
		free(ids);
	}
	for (i = 0; !err && i < natt; i++) {
		struct list_row r = { 0 };
		char *be;

		if (att[i].pause_only)
			continue; /* attach --pause's record: no disk to show */
		be = read_or(p, att[i].fe_path, "backend", "-");

		attach_row(p, &att[i], &r);
		err = show_row(&r, arr, &shown, replies, nreplies, be ? be : "-");
		free(be);
	}
	if (arr && !err)
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	free(fes);
	free(att);
	xbd_ctl_replies_free(replies, nreplies);
	xbd_platform_close(p);
	return err ? 1 : 0;
}

const struct xbd_cmd xbd_cmd_list = {
	.name = "list",
	.usage = "list [--json]",
	.summary = "show the disks xbd serves and attaches, live or dead",
	.run = cmd_list_run,
};
