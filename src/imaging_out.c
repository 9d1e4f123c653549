/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where `xbd image` writes: a raw file (optionally sparse) or an EnCase
 * E01 through libewf, always under a temporary name (NAME.partial, or
 * BASE.partial.E01 ...) that only a finished image loses, so that an
 * interrupted copy never looks complete.  Also the read-back of either
 * for --verify.
 */
#include "xbd/imaging.h"
#include "xbd/common.h"
#include "imaging_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_READ_CHUNK (1u << 20)
#define EWF_MAX_SEGMENTS 99        /* .E01 ... .E99 */
#define EWF_SEGMENT_SIZE (1ull << 40) /* one segment in practice */
#define EWF_SECTORS_PER_CHUNK 64   /* ewfacquire's default: 32 KiB chunks */

struct xbd_image_out {
	struct xbd_image_out_opts o;
	char final[PATH_MAX];         /* raw: the file; ewf: BASE.E01 */
	char tmp[PATH_MAX];           /* raw: NAME.partial; ewf: BASE.partial */
	char base[PATH_MAX];          /* ewf: BASE */
	int fd;                       /* raw */
	uint64_t off;
	bool hole_at_end;             /* raw sparse: the last chunk was skipped */
	libewf_handle_t *ewf;
	struct xbd_ewf_chunker *chunker;
	bool committed;
};

static const char *const compression_names[XBD_EWF_COMPRESSION_COUNT] = {
	"fast", "best", "none", "empty-block",
};

const char *xbd_ewf_compression_name(enum xbd_ewf_compression c)
{
	return c < XBD_EWF_COMPRESSION_COUNT ? compression_names[c] : "?";
}

int xbd_ewf_fail(const char *what, const char *name, libewf_error_t **e)
{
	char msg[512] = "";

	if (e && *e) {
		libewf_error_sprint(*e, msg, sizeof(msg));
		libewf_error_free(e);
	}
	/* libewf chains its messages with newlines: the last is the cause */
	{
		char *nl;

		while ((nl = strrchr(msg, '\n')) && nl[1] == '\0')
			*nl = '\0';
		nl = strrchr(msg, '\n');
		xbd_err("%s: %s: %s", name, what, nl ? nl + 1 : msg);
	}
	return -EIO;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcasecmp(s + a - b, suffix);
}

/* NAME of segment n (1-based) of BASE: BASE.E01 ... BASE.E99. */
static void segment_name(char *buf, size_t len, const char *base, unsigned n)
{
	snprintf(buf, len, "%s.E%02u", base, n);
}

static int names(struct xbd_image_out *io)
{
	const char *p = io->o.path;
	int n;

	if (io->o.format == XBD_IMAGE_RAW) {
		n = snprintf(io->final, sizeof(io->final), "%s", p);
		if (n >= 0 && (size_t)n < sizeof(io->final))
			n = snprintf(io->tmp, sizeof(io->tmp), "%s.partial", p);
	} else {
		size_t blen = strlen(p) - (ends_with(p, ".E01") ? 4 : 0);

		n = snprintf(io->base, sizeof(io->base), "%.*s", (int)blen, p);
		if (n >= 0 && (size_t)n < sizeof(io->base))
			n = snprintf(io->final, sizeof(io->final), "%s.E01", io->base);
		if (n >= 0 && (size_t)n < sizeof(io->final))
			n = snprintf(io->tmp, sizeof(io->tmp), "%s.partial", io->base);
	}
	/* room for a segment suffix after tmp */
	if (n < 0 || (size_t)n + 5 >= sizeof(io->tmp)) {
		xbd_err("%s: name too long", p);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* What is in the way: the image (unless --force) and a temporary file
 * a stopped run left (removed with --force). */
static int check_free(struct xbd_image_out *io)
{
	char seg[PATH_MAX + 8];
	unsigned i;

	if (!access(io->final, F_OK) && !io->o.force) {
		xbd_err("%s: exists; --force replaces it", io->final);
		return -EEXIST;
	}
	for (i = 1; i <= (io->o.format == XBD_IMAGE_EWF ? EWF_MAX_SEGMENTS : 1); i++) {
		if (io->o.format == XBD_IMAGE_EWF)
			segment_name(seg, sizeof(seg), io->tmp, i);
		else
			snprintf(seg, sizeof(seg), "%s", io->tmp);
		if (access(seg, F_OK))
			continue;
		if (!io->o.force) {
			xbd_err("%s: exists, left by an xbd image that did not finish; remove it, or --force",
				seg);
			return -EEXIST;
		}
		if (unlink(seg)) {
			xbd_err("%s: %s", seg, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static int ewf_header(struct xbd_image_out *io, const char *id, const char *v,
		      libewf_error_t **e)
{
	if (!v)
		return 1;
	return libewf_handle_set_utf8_header_value(io->ewf, (const uint8_t *)id,
						   strlen(id), (const uint8_t *)v,
						   strlen(v), e);
}

static int ewf_open(struct xbd_image_out *io)
{
	libewf_error_t *e = NULL;
	char *names[1] = { io->tmp };
	const struct xbd_image_out_opts *o = &io->o;
	int8_t level = LIBEWF_COMPRESSION_FAST;
	uint8_t flags = LIBEWF_COMPRESS_FLAG_USE_EMPTY_BLOCK_COMPRESSION;

	switch (o->compression) {
	case XBD_EWF_BEST: level = LIBEWF_COMPRESSION_BEST; break;
	case XBD_EWF_NONE: level = LIBEWF_COMPRESSION_NONE; flags = 0; break;
	case XBD_EWF_EMPTY_BLOCK: level = LIBEWF_COMPRESSION_NONE; break;
	default: break;
	}

	if (libewf_handle_initialize(&io->ewf, &e) != 1)
		return xbd_ewf_fail("cannot start libewf", io->final, &e);
	if (libewf_handle_open(io->ewf, names, 1, LIBEWF_OPEN_WRITE, &e) != 1)
		return xbd_ewf_fail("cannot create", io->tmp, &e);
	/* ewfacquire's order: the compression before the chunk size, whose
	 * setting makes libewf deflate its cached zero chunk at that level */
	if (libewf_handle_set_format(io->ewf, LIBEWF_FORMAT_ENCASE6, &e) != 1 ||
	    libewf_handle_set_bytes_per_sector(io->ewf, 512, &e) != 1 ||
	    libewf_handle_set_media_size(io->ewf, o->size, &e) != 1 ||
	    libewf_handle_set_media_type(io->ewf, LIBEWF_MEDIA_TYPE_FIXED, &e) != 1 ||
	    libewf_handle_set_media_flags(io->ewf, LIBEWF_MEDIA_FLAG_PHYSICAL, &e) != 1 ||
	    libewf_handle_set_compression_values(io->ewf, level, flags, &e) != 1 ||
	    libewf_handle_set_sectors_per_chunk(io->ewf, EWF_SECTORS_PER_CHUNK, &e) != 1)
		return xbd_ewf_fail("cannot set up the E01", io->final, &e);
	/* a larger segment is refused by older formats: keep libewf's then */
	if (libewf_handle_set_maximum_segment_size(io->ewf, EWF_SEGMENT_SIZE, &e) != 1)
		libewf_error_free(&e);
	if (ewf_header(io, "case_number", o->case_number, &e) != 1 ||
	    ewf_header(io, "evidence_number", o->evidence_number, &e) != 1 ||
	    ewf_header(io, "examiner_name", o->examiner, &e) != 1 ||
	    ewf_header(io, "description", o->description, &e) != 1 ||
	    ewf_header(io, "notes", o->notes, &e) != 1 ||
	    ewf_header(io, "acquiry_software", "xbd", &e) != 1 ||
	    ewf_header(io, "acquiry_software_version", XBD_VERSION, &e) != 1 ||
	    ewf_header(io, "acquiry_operating_system", "Linux", &e) != 1)
		return xbd_ewf_fail("cannot store the case metadata", io->final, &e);
	return xbd_ewf_chunker_new(io->ewf, io->tmp, level, flags, o->threads, &io->chunker);
}

int xbd_image_out_open(const struct xbd_image_out_opts *o, struct xbd_image_out **out)
{
	struct xbd_image_out *io = calloc(1, sizeof(*io));
	int err;

	if (!io)
		return -ENOMEM;
	io->o = *o;
	io->fd = -1;
	err = names(io);
	if (!err)
		err = check_free(io);
	if (!err && o->format == XBD_IMAGE_RAW) {
		io->fd = open(io->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (io->fd < 0) {
			err = -errno;
			xbd_err("%s: %s", io->tmp, strerror(errno));
		}
	} else if (!err) {
		err = ewf_open(io);
	}
	if (err) {
		xbd_image_out_close(io);
		return err;
	}
	*out = io;
	return 0;
}

static bool all_zero(const uint8_t *b, size_t len)
{
	return len == 0 || (b[0] == 0 && !memcmp(b, b + 1, len - 1));
}

int xbd_image_out_write(struct xbd_image_out *io, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (io->ewf)
		return xbd_ewf_chunker_write(io->chunker, p, len);
	if (io->o.sparse && all_zero(p, len)) {
		io->off += len;
		io->hole_at_end = true;
		return 0;
	}
	io->hole_at_end = false;
	while (len) {
		ssize_t n = pwrite(io->fd, p, len, (off_t)io->off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;

			xbd_err("%s: cannot write: %s", io->tmp, xbd_strerror(err));
			return err;
		}
		p += n;
		len -= (size_t)n;
		io->off += (uint64_t)n;
	}
	return 0;
}

int xbd_image_out_add_errors(struct xbd_image_out *io,
			     const struct xbd_sector_range *bad, unsigned n)
{
	libewf_error_t *e = NULL;
	unsigned i;

	for (i = 0; io->ewf && i < n; i++)
		if (libewf_handle_append_acquiry_error(io->ewf, bad[i].start,
						       bad[i].end - bad[i].start + 1, &e) != 1)
			return xbd_ewf_fail("cannot record the unreadable sectors", io->tmp, &e);
	return 0;
}

/* Renames BASE.partial.Enn to BASE.Enn for every segment there is. */
static int ewf_rename(struct xbd_image_out *io)
{
	char from[PATH_MAX + 8], to[PATH_MAX + 8];
	unsigned i;

	for (i = 1; i <= EWF_MAX_SEGMENTS; i++) {
		segment_name(from, sizeof(from), io->tmp, i);
		segment_name(to, sizeof(to), io->base, i);
		if (access(from, F_OK))
			break;
		if (rename(from, to)) {
			xbd_err("%s: cannot rename to %s: %s", from, to, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

int xbd_image_out_commit(struct xbd_image_out *io, const uint8_t *md5,
			 const uint8_t *sha1)
{
	libewf_error_t *e = NULL;

	if (io->ewf) {
		uint8_t d[20];
		int err = xbd_ewf_chunker_flush(io->chunker);

		if (err)
			return err;
		xbd_ewf_chunker_free(io->chunker);
		io->chunker = NULL;

		if (md5) {
			memcpy(d, md5, 16);
			if (libewf_handle_set_md5_hash(io->ewf, d, 16, &e) != 1)
				return xbd_ewf_fail("cannot store the MD5", io->tmp, &e);
		}
		if (sha1) {
			memcpy(d, sha1, 20);
			if (libewf_handle_set_sha1_hash(io->ewf, d, 20, &e) != 1)
				return xbd_ewf_fail("cannot store the SHA-1", io->tmp, &e);
		}
		if (libewf_handle_write_finalize(io->ewf, &e) < 0)
			return xbd_ewf_fail("cannot finish", io->tmp, &e);
		if (libewf_handle_close(io->ewf, &e) != 0)
			return xbd_ewf_fail("cannot close", io->tmp, &e);
		libewf_handle_free(&io->ewf, NULL);
		io->ewf = NULL;
		io->committed = ewf_rename(io) == 0;
		return io->committed ? 0 : -EIO;
	}
	/* a hole at the end has no bytes written to give the file its size */
	if ((io->hole_at_end || io->off < io->o.size) &&
	    ftruncate(io->fd, (off_t)io->o.size)) {
		xbd_err("%s: %s", io->tmp, strerror(errno));
		return -errno;
	}
	if (fsync(io->fd) || close(io->fd)) {
		int err = -errno;

		io->fd = -1;
		xbd_err("%s: cannot write: %s", io->tmp, xbd_strerror(err));
		return err;
	}
	io->fd = -1;
	if (rename(io->tmp, io->final)) {
		xbd_err("%s: cannot rename to %s: %s", io->tmp, io->final, strerror(errno));
		return -errno;
	}
	io->committed = true;
	return 0;
}

void xbd_image_out_close(struct xbd_image_out *io)
{
	char seg[PATH_MAX + 8];
	unsigned i;

	if (!io)
		return;
	if (io->fd >= 0)
		close(io->fd);
	xbd_ewf_chunker_free(io->chunker);
	if (io->ewf) {
		libewf_handle_close(io->ewf, NULL);
		libewf_handle_free(&io->ewf, NULL);
	}
	if (!io->committed && io->o.format == XBD_IMAGE_RAW && io->tmp[0])
		unlink(io->tmp);
	for (i = 1; !io->committed && io->o.format == XBD_IMAGE_EWF && io->tmp[0] &&
		    i <= EWF_MAX_SEGMENTS; i++) {
		segment_name(seg, sizeof(seg), io->tmp, i);
		if (unlink(seg))
			break;
	}
	free(io);
}

const char *xbd_image_out_name(const struct xbd_image_out *io)
{
	return io->final;
}

/* ------------------------------------------------------------------ */
/* Reading back (--verify)                                            */
/* ------------------------------------------------------------------ */

struct verify {
	struct xbd_hashset *hs;
	uint8_t *buf;
	uint64_t *bytes;
	int (*tick)(void *arg, uint64_t done);
	void *tick_arg;
};

/* n more bytes read into v->buf. */
static int verify_add(struct verify *v, size_t n)
{
	*v->bytes += n;
	if (v->tick && v->tick(v->tick_arg, *v->bytes))
		return -EINTR;
	return xbd_hashset_update(v->hs, v->buf, n);
}

static int verify_raw(const char *path, struct verify *v)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0) {
		xbd_err("%s: %s", path, strerror(errno));
		return -errno;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t n = read(fd, v->buf, OUT_READ_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			xbd_err("%s: cannot read: %s", path, strerror(errno));
		}
		if (n <= 0)
			break;
		err = verify_add(v, (size_t)n);
		if (err)
			break;
	}
	close(fd);
	return err;
}

static int verify_ewf(const char *path, struct verify *v)
{
	libewf_handle_t *h = NULL;
	libewf_error_t *e = NULL;
	char **files = NULL;
	int nfiles = 0, err = 0;

	if (libewf_glob(path, strlen(path), LIBEWF_FORMAT_UNKNOWN, &files, &nfiles, &e) != 1)
		return xbd_ewf_fail("cannot find its segments", path, &e);
	if (libewf_handle_initialize(&h, &e) != 1 ||
	    libewf_handle_open(h, files, nfiles, LIBEWF_OPEN_READ, &e) != 1) {
		err = xbd_ewf_fail("cannot open", path, &e);
		goto out;
	}
	for (;;) {
		ssize_t n = libewf_handle_read_buffer(h, v->buf, OUT_READ_CHUNK, &e);

		if (n < 0) {
			err = xbd_ewf_fail("cannot read", path, &e);
			break;
		}
		if (n == 0)
			break;
		err = verify_add(v, (size_t)n);
		if (err)
			break;
	}
	libewf_handle_close(h, NULL);
out:
	libewf_handle_free(&h, NULL);
	libewf_glob_free(files, nfiles, NULL);
	return err;
}

int xbd_image_verify(enum xbd_image_format format, const char *path,
		     const bool want[XBD_HASH_COUNT],
		     char hex[XBD_HASH_COUNT][2 * XBD_HASH_MAX_BYTES + 1],
		     uint64_t *bytes, int (*tick)(void *arg, uint64_t done),
		     void *tick_arg)
{
	struct verify v = { .buf = malloc(OUT_READ_CHUNK), .bytes = bytes,
			    .tick = tick, .tick_arg = tick_arg };
	int err = v.buf ? xbd_hashset_new(want, &v.hs) : -ENOMEM;

	*bytes = 0;
	if (!err)
		err = format == XBD_IMAGE_RAW ? verify_raw(path, &v) : verify_ewf(path, &v);
	if (!err)
		err = xbd_hashset_final(v.hs, hex);
	xbd_hashset_free(v.hs);
	free(v.buf);
	return err;
}
