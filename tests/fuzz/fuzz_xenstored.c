/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The simulated xenstored's wire protocol (src/sim/sim_xenstored_*.c):
 * requests as any client may send them (a guest's connections
 * included) through the daemon's dispatch, on connections that have no
 * socket behind them: no thread, no poll loop, the harness plays both.
 * Every message is one frame as conn_read would hand it over (the
 * length check that drops a connection is conn_read's own).
 *
 * Checks, besides ASan and UBSan: every reply and event fits the wire
 * format, the output byte count matches what is queued, and the store
 * stays a tree (every node's parent exists and lists it).
 *
 * Input: messages, each [who][type][tx][u16 len][len bytes]; `who`
 * picks a connection or opens a new one (dom0's or a guest's).
 */
#include "tests/fuzz/fuzz.h"
#include "src/sim/sim_xenstored.h"

#include <stdbool.h>
#include <unistd.h>

#define MAX_MSGS 64
#define MAX_CONNS 8

static char dir[4096];

static void remove_dir(void)
{
	rmdir(dir);
}

static struct conn *new_conn(struct sim_xenstored *xs, unsigned domid)
{
	struct conn *c;

	if (xs->nconns >= MAX_CONNS)
		return NULL;
	c = calloc(1, sizeof(*c));
	FUZZ_CHECK(c);
	c->fd = -1;
	c->domid = domid;
	c->out_tail = &c->out;
	c->next = xs->conns;
	xs->conns = c;
	xs->nconns++;
	return c;
}

/* What the client reads: checks each message and drops it. */
static void drain_output(struct conn *c)
{
	size_t total = 0;

	for (struct outmsg *m = c->out; m; m = m->next) {
		struct xsd_sockmsg h;

		FUZZ_CHECK(m->len >= sizeof(h));
		memcpy(&h, m->data, sizeof(h));
		FUZZ_CHECK(h.len <= XENSTORE_PAYLOAD_MAX);
		FUZZ_CHECK(m->len == sizeof(h) + h.len);
		total += m->len;
	}
	FUZZ_CHECK(total == c->out_bytes);
	while (c->out) {
		struct outmsg *m = c->out;

		c->out = m->next;
		free(m);
	}
	c->out_tail = &c->out;
	c->out_bytes = 0;
}

static bool lists_child(const struct node *parent, const char *name)
{
	for (uint32_t off = 0; off < parent->children_len;) {
		const char *child = parent->children + off;

		if (!strcmp(child, name))
			return true;
		off += (uint32_t)strlen(child) + 1;
	}
	return false;
}

static void check_tree(const struct sim_xenstored *xs)
{
	for (size_t b = 0; b < xs->store.nbuckets; b++)
		for (const struct node *n = xs->store.buckets[b]; n; n = n->hash_next) {
			char up[PATH_BUF];
			const struct node *parent;

			FUZZ_CHECK(xsd_table_find(&xs->store, n->path) == n);
			FUZZ_CHECK(n->perms.n >= 1);
			if (!strcmp(n->path, "/"))
				continue;
			xsd_parent_path(n->path, up);
			parent = xsd_table_find(&xs->store, up);
			FUZZ_CHECK(parent);
			FUZZ_CHECK(lists_child(parent, strrchr(n->path, '/') + 1));
			if (n->children_len)
				FUZZ_CHECK(n->children[n->children_len - 1] == '\0');
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = { data, size };
	struct sim_xenstored xs;
	uint32_t req_id = 0;

	if (!dir[0]) {
		const char *tmp = getenv("TMPDIR");

		fuzz_quiet_logs();
		snprintf(dir, sizeof(dir), "%s/xbd-fuzz-xs.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		FUZZ_CHECK(mkdtemp(dir));
		atexit(remove_dir);
	}
	memset(&xs, 0, sizeof(xs));
	xs.listen_fd = xs.wake[0] = xs.wake[1] = -1;
	xs.dir = dir;
	FUZZ_CHECK(xsd_seed_store(&xs) == 0);
	new_conn(&xs, 0);
	new_conn(&xs, 1);

	for (unsigned m = 0; m < MAX_MSGS && in.n; m++) {
		uint8_t who = fz_u8(&in), type = fz_u8(&in), tx = fz_u8(&in);
		uint16_t len = fz_u16(&in) % (XENSTORE_PAYLOAD_MAX + 1);
		struct conn *c = xs.conns;

		if (who & 0x80 || !c) {
			/* dom0, or guest 1..3 */
			c = new_conn(&xs, who & 3);
			if (!c)
				c = xs.conns;
		} else {
			for (unsigned k = who % xs.nconns; k && c->next; k--)
				c = c->next;
		}
		if (!c)
			break;
		memset(&c->hdr, 0, sizeof(c->hdr));
		c->hdr.type = type % (XS_TYPE_COUNT + 2);
		c->hdr.req_id = ++req_id;
		/* mostly no transaction or a recent one, now and then any */
		c->hdr.tx_id = tx < 0xf0 ? tx % 4 : tx;
		c->hdr.len = len;
		fz_bytes(&in, c->body, len);
		xsd_process_message(&xs, c);
		for (struct conn *o = xs.conns; o; o = o->next)
			drain_output(o);
		xsd_reap(&xs);
		check_tree(&xs);
	}
	xsd_free_state(&xs);
	return 0;
}
