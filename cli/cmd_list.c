/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbd list: the disks `xbd serve` serves on this host, from xenstore
 * (xbd's own backend type) and, for the request counts, from each
 * serving process's control socket.
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
 * serving backend_path (-1 when it does not answer). */
static long long ctl_requests(struct xbd_ctl_reply *replies, unsigned n,
			      const char *backend_path)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct json_object *devs, *dev, *v, *reqs;
		size_t j;

		if (replies[i].err ||
		    !json_object_object_get_ex(replies[i].doc, "devices", &devs))
			continue;
		for (j = 0; j < json_object_array_length(devs); j++) {
			long long total = 0;

			dev = json_object_array_get_idx(devs, j);
			if (!json_object_object_get_ex(dev, "backend_path", &v) ||
			    strcmp(json_object_get_string(v), backend_path) ||
			    !json_object_object_get_ex(dev, "requests", &reqs))
				continue;
			json_object_object_foreach(reqs, key, val)
				if (strcmp(key, "indirect"))
					total += json_object_get_int64(val);
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

/* One disk of `xbd list`, as xenstore and its process tell it. */
struct list_row {
	char *vm, *state, *mode, *fmt, *pid, *params;
	const char *domid;
	char vdev[16];
	long long requests; /* -1: unknown */
};

static void list_print_text(const struct list_row *r, bool header)
{
	char reqs[24] = "-";
	unsigned long long st;

	if (xbd_parse_uint(r->state, XenbusStateReconfigured, &st))
		st = XenbusStateUnknown;

	if (header)
		printf("%-12s %5s %-6s %-12s %-4s %-6s %7s %10s  %s\n", "VM",
		       "DOMID", "VDEV", "STATE", "MODE", "FORMAT", "PID",
		       "REQUESTS", "IMAGE");
	if (r->requests >= 0)
		snprintf(reqs, sizeof(reqs), "%lld", r->requests);
	printf("%-12s %5s %-6s %-12s %-4s %-6s %7s %10s  %s\n", r->vm, r->domid,
	       r->vdev, xbd_xenbus_state_name((enum xenbus_state)st), r->mode,
	       r->fmt, r->pid, reqs, r->params);
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
	unsigned long long st;

	if (xbd_parse_uint(r->state, XenbusStateReconfigured, &st))
		st = XenbusStateUnknown;

	json_object_object_add(o, "vm", json_string_or_null(r->vm));
	json_object_object_add(o, "domid", json_number_or_null(r->domid));
	json_object_object_add(o, "vdev", json_object_new_string(r->vdev));
	json_object_object_add(o, "state", json_object_new_string(
		xbd_xenbus_state_name((enum xenbus_state)st)));
	json_object_object_add(o, "mode", json_string_or_null(r->mode));
	json_object_object_add(o, "format", json_string_or_null(r->fmt));
	json_object_object_add(o, "pid", json_number_or_null(r->pid));
	json_object_object_add(o, "requests", r->requests >= 0 ?
			       json_object_new_int64(r->requests) : NULL);
	json_object_object_add(o, "image", json_string_or_null(r->params));
	json_object_array_add(arr, o);
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
			       "Shows the disks that `xbd serve` serves on this host, one per line\n"
			       "under a header (nothing at all when there are none); --json prints\n"
			       "one JSON array of objects instead.\n");
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

static int cmd_list_run(int argc, char **argv)
{
	const struct xbd_platform_ops *ops;
	struct xbd_platform *p;
	struct xbd_ctl_reply *replies = NULL;
	struct json_object *arr = NULL;
	unsigned nreplies = 0, nfe = 0, i, j, shown = 0;
	char type_dir[96], **fes = NULL;
	bool json = false;
	int err;

	err = parse_list(argc, argv, &json);
	if (err)
		return err < 0 ? 0 : err;
	if (xbd_cli_open_platform(&p))
		return 1;
	ops = xbd_platform_ops_of(p);
	snprintf(type_dir, sizeof(type_dir), "/local/domain/%u/backend/%s",
		 ops->self_domid(p), XBD_BACKEND_TYPE);
	err = ops->xs_directory(p, XBD_XS_NO_TXN, type_dir, &fes, &nfe);
	if (err == -ENOENT) {
		err = 0; /* nothing served yet */
	} else if (err) {
		xbd_err("%s: %s", type_dir, xbd_strerror(err));
		xbd_platform_close(p);
		return 1;
	}
	if (nfe && xbd_ctl_query_all(NULL, "stats", XBD_CTL_TIMEOUT_MS, &replies,
				     &nreplies))
		nreplies = 0;
	if (json && !(arr = json_object_new_array())) {
		xbd_err("list: out of memory");
		err = -ENOMEM;
	}
	for (i = 0; !err && i < nfe; i++) {
		char dir[128], **ids = NULL;
		unsigned nid = 0;

		snprintf(dir, sizeof(dir), "%s/%s", type_dir, fes[i]);
		if (ops->xs_directory(p, XBD_XS_NO_TXN, dir, &ids, &nid))
			continue;
		for (j = 0; j < nid; j++) {
			struct list_row r = { .domid = fes[i] };
			unsigned long long devid;
			char be[192], name_path[64];

			snprintf(be, sizeof(be), "%s/%s", dir, ids[j]);
			snprintf(name_path, sizeof(name_path),
				 "/local/domain/%s/name", fes[i]);
			r.vm = read_or(p, name_path, NULL, "-");
			if (xbd_parse_uint(ids[j], UINT32_MAX, &devid) ||
			    xbd_devid_to_vdev((uint32_t)devid, r.vdev, sizeof(r.vdev)))
				snprintf(r.vdev, sizeof(r.vdev), "%s", ids[j]);
			r.state = read_or(p, be, "state", "0");
			r.mode = read_or(p, be, "mode", "-");
			r.fmt = read_or(p, be, "xbd-format", "-");
			r.pid = read_or(p, be, "xbd-pid", "-");
			r.params = read_or(p, be, "params", "-");
			r.requests = ctl_requests(replies, nreplies, be);
			if (!r.vm || !r.state || !r.mode || !r.fmt || !r.pid ||
			    !r.params) {
				xbd_err("list: out of memory");
				err = -ENOMEM;
			} else if (json) {
				list_add_json(arr, &r);
			} else {
				list_print_text(&r, shown == 0);
			}
			free(r.vm);
			free(r.state);
			free(r.mode);
			free(r.fmt);
			free(r.pid);
			free(r.params);
			shown++;
		}
		free(ids);
	}
	if (arr && !err)
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	free(fes);
	xbd_ctl_replies_free(replies, nreplies);
	xbd_platform_close(p);
	return err ? 1 : 0;
}

const struct xbd_cmd xbd_cmd_list = {
	.name = "list",
	.usage = "list [--json]",
	.summary = "show the disks xbd serves",
	.run = cmd_list_run,
};
