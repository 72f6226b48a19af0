/* simdisk: the simulated disks of one world as an sqlite VFS (see simdisk.h).
 *
 * Layout. A simvfs keeps its disks in an array sorted by name; a disk keeps
 * its files in an array sorted by name, so every walk over them (hash, bytes,
 * crash recovery) is in name order. A file is shared by every handle sqlite
 * opens on it and counts its references (one for its place on the disk, one
 * per open handle): a file deleted while open lives on, nameless, until its
 * last close, as on POSIX. Temp files, which sqlite opens without a name,
 * belong to no disk and vanish on close.
 *
 * Durability model, which the crash fault relies on:
 *  - xWrite and xTruncate change the file's current bytes at once;
 *  - xSync makes the current bytes the file's synced image;
 *  - creating and deleting a file are durable at once (a simplification:
 *    real directories need their own fsync);
 *  - while a disk is crashed, writes, truncates, syncs and deletes on its
 *    files succeed and change nothing, and files created then never appear
 *    on the disk (the node is dead; nothing it does reaches the platters);
 *  - ending a crash with lose_unsynced puts every file back to its synced
 *    image and removes files never synced.
 * The synced image is kept page by page, copy-on-write: a file keeps its
 * current bytes, the size it had at its last xSync, and the synced bytes of
 * only the pages (SIMDISK_PAGE_BYTES) changed since, each copied aside the
 * first time a change touches it. Crash recovery sizes the file back and
 * puts those pages back. So xSync and crash recovery never allocate, and a
 * write costs its pages, not its file (an agent's database of thousands of
 * tasks used to be copied whole at the first write after every sync).
 * Invariant: every page holding bytes of [cur.size, synced_size) is saved
 * (a truncate saves what it cuts), so the bytes outside saved pages below
 * synced_size are the synced bytes. Files off every disk (temp files,
 * deleted files) are never recovered and keep nothing aside.
 *
 * Locks follow sqlite's os_unix.c for one process: per handle a level, per
 * file the number of handles at SHARED or above and the one handle at
 * RESERVED or above. No shared memory (io methods version 1), so sqlite
 * refuses WAL unless locking_mode=EXCLUSIVE.
 *
 * Sections: limits and types, buffers, disks and files, io methods, vfs
 * methods, public API. */
#include "sim/simdisk.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/hash.h"
#include "core/limits.h"

/* ---------------------------------------------------------------- limits and types */

/* The simulated disk's own limits. They live here, not in core/limits.h,
 * because only the simulator has them. */
#define LIMIT_SIM_FILE_BYTES_MAX (1ull << 30)	 /* one file; past it, SQLITE_FULL */
#define LIMIT_SIM_DISK_FILES_MAX 4096u		 /* files on one disk */
#define LIMIT_SIM_DISKS_MAX	 LIMIT_NODES_MAX /* one disk per node */
#define LIMIT_SIM_PATH_BYTES_MAX 512u		 /* "/DISK/FILE"; sqlite's mxPathname */

_Static_assert(LIMIT_SIM_FILE_BYTES_MAX <= SIZE_MAX / 2, "buffer growth cannot overflow");
_Static_assert(LIMIT_NAME_BYTES_MAX + 3 < LIMIT_SIM_PATH_BYTES_MAX,
	       "a path holds a disk name and a file name");

#define SIMDISK_SECTOR_BYTES 4096
#define SIMDISK_PAGE_BYTES   4096u /* the copy-on-write unit of synced images */
_Static_assert(LIMIT_SIM_FILE_BYTES_MAX / SIMDISK_PAGE_BYTES < UINT32_MAX,
	       "a page index fits a uint32_t");
#define SIMDISK_BUF_MIN_BYTES 4096u
enum { SIMDISK_SPARES_MAX = 8, SIMDISK_SPARE_BYTES_MAX = 64 * 1024 };
/* sqlite's time: milliseconds since the Julian epoch; the Unix epoch is
 * Julian day 2440587.5. */
#define SIMDISK_UNIX_EPOCH_JULIAN_MS 210866760000000ll
#define SIMDISK_DAY_MS		     86400000.0

struct simdisk_buf {
	unsigned char *bytes;
	size_t size; /* bytes in use */
	size_t cap;  /* bytes allocated */
};

struct simdisk_disk;
struct simdisk_handle;

struct simdisk_file {
	char *name;		   /* within its disk; NULL for temp files */
	struct simdisk_disk *disk; /* NULL for temp files */
	bool linked;		   /* listed in disk->files */
	uint32_t refs;		   /* the link, plus one per open handle */
	struct simdisk_buf cur;	   /* what reads see */
	bool has_synced;	   /* xSync ran at least once */
	size_t synced_size;	   /* cur.size at the last xSync */
	/* The synced bytes of the pages changed since the last xSync: page
	 * saved[i] (an index of SIMDISK_PAGE_BYTES pages) had the bytes at
	 * saved_bytes + i * SIMDISK_PAGE_BYTES; slot_of[page] is i + 1 for a
	 * saved page, 0 otherwise (pages past slot_cap: 0). */
	uint32_t *saved;
	uint32_t saved_count;
	uint32_t saved_cap;
	unsigned char *saved_bytes; /* saved_cap pages */
	uint32_t *slot_of;
	uint32_t slot_cap;
	uint32_t shared_count;	       /* handles holding SHARED or more */
	struct simdisk_handle *writer; /* the handle at RESERVED or more */
};

struct simdisk_disk {
	struct simvfs *vfs; /* its VFS: the spare buffers */
	char *name;
	bool crashed;
	bool torn;		     /* the crash began under SIMVFS_FAULT_TORN */
	uint32_t faults;	     /* SIMVFS_FAULT_* bits, while now < fault_until */
	int64_t fault_until;	     /* in the now callback's clock */
	int64_t healthy_from;	     /* when the last fault ended or ends */
	struct simdisk_file **files; /* sorted by name */
	uint32_t file_count;
	uint32_t file_cap;
};

/* What sqlite allocates for each open file (szOsFile). */
struct simdisk_handle {
	sqlite3_file base; /* first: sqlite hands us a sqlite3_file * */
	struct simvfs *vfs;
	struct simdisk_file *file;
	int lock; /* SQLITE_LOCK_* */
	bool delete_on_close;
};

struct simvfs {
	sqlite3_vfs base; /* registered with sqlite; pAppData points back here */
	char *name;
	simvfs_now_fn now;
	simvfs_random_fn random;
	void *ctx;
	struct simdisk_disk **disks; /* sorted by name */
	int64_t faults_until;	     /* no disk is faulted from then on (a bound) */
	uint32_t disk_count;
	uint32_t disk_cap;
	uint32_t handles_open;
	/* issue 18: the byte buffers of files freed lately, for the next new
	 * files (a rollback journal is made, grown and deleted at every
	 * transaction: a malloc and reallocs each time). Their old bytes are
	 * never read: a file reads only up to its size, and grows with zeros
	 * in any gap. At most SIMDISK_SPARES_MAX of them, each at most
	 * SIMDISK_SPARE_BYTES_MAX. */
	unsigned char *spares[SIMDISK_SPARES_MAX];
	size_t spare_caps[SIMDISK_SPARES_MAX];
	uint32_t spare_count;
	uint64_t spares_taken; /* for tests */
};

/* ---------------------------------------------------------------- buffers */

/* simdisk_buf_reserve makes room for size bytes (size within the file
 * limit). Returns SQLITE_OK, or SQLITE_IOERR_NOMEM with b unchanged. */
static int simdisk_buf_reserve(struct simdisk_buf *b, size_t size)
{
	size_t cap;
	unsigned char *bytes;

	assert(size <= LIMIT_SIM_FILE_BYTES_MAX);
	if (size <= b->cap)
		return SQLITE_OK;
	/* a quarter more, at least what is asked, in whole pages: amortised
	 * growth for large files, and no more than a page of slack for the
	 * small ones of every simulated node (doubling left up to half a
	 * file's room unused) */
	cap = b->cap + b->cap / 4;
	if (cap < size)
		cap = size;
	if (cap < SIMDISK_BUF_MIN_BYTES)
		cap = SIMDISK_BUF_MIN_BYTES;
	cap = (cap + SIMDISK_PAGE_BYTES - 1) / SIMDISK_PAGE_BYTES * SIMDISK_PAGE_BYTES;
	if (cap > LIMIT_SIM_FILE_BYTES_MAX)
		cap = LIMIT_SIM_FILE_BYTES_MAX;
	bytes = realloc(b->bytes, cap);
	if (!bytes)
		return SQLITE_IOERR_NOMEM;
	b->bytes = bytes;
	b->cap = cap;
	assert(b->cap >= size);
	return SQLITE_OK;
}

/* simdisk_buf_resize sets b's size, zero-filling what it grows by. Returns
 * SQLITE_OK, or SQLITE_IOERR_NOMEM with b unchanged. */
static int simdisk_buf_resize(struct simdisk_buf *b, size_t size)
{
	int rc = simdisk_buf_reserve(b, size);

	if (rc != SQLITE_OK)
		return rc;
	if (size > b->size)
		memset(b->bytes + b->size, 0, size - b->size);
	b->size = size;
	return SQLITE_OK;
}

/* ---------------------------------------------------------------- disks and files */

/* simdisk_file_new returns a new empty file with no references, named
 * `name` (copied; NULL for a temp file) on disk (NULL for a temp file), or
 * NULL when out of memory. */
static struct simdisk_file *simdisk_file_new(struct simdisk_disk *disk, const char *name)
{
	struct simdisk_file *f = calloc(1, sizeof *f);

	if (!f)
		return NULL;
	if (name) {
		f->name = strdup(name);
		if (!f->name) {
			free(f);
			return NULL;
		}
	}
	f->disk = disk;
	return f;
}

/* simdisk_file_free frees f, which nothing references. */
static void simdisk_file_free(struct simdisk_file *f)
{
	struct simvfs *vfs = f->disk ? f->disk->vfs : NULL;

	assert(f->refs == 0);
	assert(!f->linked);
	assert(f->shared_count == 0);
	assert(f->writer == NULL);
	if (vfs && f->cur.bytes && f->cur.cap <= SIMDISK_SPARE_BYTES_MAX &&
	    vfs->spare_count < SIMDISK_SPARES_MAX) {
		vfs->spares[vfs->spare_count] = f->cur.bytes;
		vfs->spare_caps[vfs->spare_count++] = f->cur.cap;
		f->cur.bytes = NULL;
	}
	free(f->cur.bytes);
	free(f->saved);
	free(f->saved_bytes);
	free(f->slot_of);
	free(f->name);
	free(f);
}

/* simdisk_file_unref drops one reference to f and frees it with the last. */
static void simdisk_file_unref(struct simdisk_file *f)
{
	assert(f->refs > 0);
	f->refs--;
	if (f->refs == 0)
		simdisk_file_free(f);
}

static bool simdisk_file_is_crashed(const struct simdisk_file *f)
{
	return f->disk && f->disk->crashed;
}

/* The faults (SIMVFS_FAULT_* bits) holding now on f's disk; temp files
 * belong to no disk and never fail. */
static uint32_t simdisk_file_faults(const struct simdisk_file *f,
				    const struct simvfs *vfs)
{
	const struct simdisk_disk *d = f->disk;
	if (!d || d->faults == 0)
		return 0;
	return vfs->now(vfs->ctx) < d->fault_until ? d->faults : 0;
}

/* The number of pages that hold size bytes. */
static uint32_t simdisk_pages(size_t size)
{
	return (uint32_t)((size + SIMDISK_PAGE_BYTES - 1) / SIMDISK_PAGE_BYTES);
}

/* simdisk_file_save_page copies page (of the synced image) aside unless it
 * was already. Returns SQLITE_OK, or SQLITE_IOERR_NOMEM with nothing saved
 * (but maybe more room). */
static int simdisk_file_save_page(struct simdisk_file *f, uint32_t page)
{
	size_t off = (size_t)page * SIMDISK_PAGE_BYTES;
	size_t len;

	assert(off < f->synced_size);
	if (page < f->slot_cap && f->slot_of[page] != 0)
		return SQLITE_OK;
	if (page >= f->slot_cap) {
		uint32_t cap = simdisk_pages(f->synced_size);
		uint32_t *slot_of = realloc(f->slot_of, (size_t)cap * sizeof *slot_of);
		assert(cap > page);
		if (!slot_of)
			return SQLITE_IOERR_NOMEM;
		memset(slot_of + f->slot_cap, 0,
		       (size_t)(cap - f->slot_cap) * sizeof *slot_of);
		f->slot_of = slot_of;
		f->slot_cap = cap;
	}
	if (f->saved_count == f->saved_cap) {
		/* from one page: most files of a simulated node (an agent's
		 * database) change a few pages between syncs, and the room
		 * stays (sync and crash recovery never allocate) */
		uint32_t cap = f->saved_cap ? f->saved_cap * 2 : 1;
		uint32_t *saved = realloc(f->saved, (size_t)cap * sizeof *saved);
		unsigned char *bytes;
		if (!saved)
			return SQLITE_IOERR_NOMEM;
		f->saved = saved;
		bytes = realloc(f->saved_bytes, (size_t)cap * SIMDISK_PAGE_BYTES);
		if (!bytes)
			return SQLITE_IOERR_NOMEM;
		f->saved_bytes = bytes;
		f->saved_cap = cap;
	}
	/* the page is whole in cur: a page that reaches past cur.size (but
	 * not past synced_size) was saved when a truncate cut it */
	len = f->synced_size - off < SIMDISK_PAGE_BYTES ? f->synced_size - off
							: SIMDISK_PAGE_BYTES;
	assert(off + len <= f->cur.size);
	memcpy(f->saved_bytes + (size_t)f->saved_count * SIMDISK_PAGE_BYTES,
	       f->cur.bytes + off, len);
	f->saved[f->saved_count] = page;
	f->slot_of[page] = ++f->saved_count;
	return SQLITE_OK;
}

/* simdisk_file_will_change must run before bytes [from, to) of cur change
 * (a write, or a truncate that cuts them): it saves the synced bytes of
 * the pages they touch. Bytes at or past cur.size are new (their synced
 * pages, if any, are saved already). Returns SQLITE_OK, or
 * SQLITE_IOERR_NOMEM with nothing changed that reads or a crash see. */
static int simdisk_file_will_change(struct simdisk_file *f, size_t from, size_t to)
{
	if (!f->has_synced || !f->linked)
		return SQLITE_OK;
	if (to > f->cur.size)
		to = f->cur.size;
	if (to > f->synced_size)
		to = f->synced_size;
	if (from >= to)
		return SQLITE_OK;
	for (uint32_t page = (uint32_t)(from / SIMDISK_PAGE_BYTES);
	     page <= (uint32_t)((to - 1) / SIMDISK_PAGE_BYTES); page++) {
		int rc = simdisk_file_save_page(f, page);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/* simdisk_file_synced makes the current bytes the synced image (forgets
 * the saved pages; never allocates). */
static void simdisk_file_synced(struct simdisk_file *f)
{
	for (uint32_t i = 0; i < f->saved_count; i++) {
		assert(f->saved[i] < f->slot_cap);
		f->slot_of[f->saved[i]] = 0;
	}
	f->saved_count = 0;
	f->synced_size = f->cur.size;
	f->has_synced = true;
}

/* simdisk_file_revert puts f back to its synced image (never allocates:
 * cur had room for synced_size bytes at the sync, and buffers never
 * shrink). */
static void simdisk_file_revert(struct simdisk_file *f)
{
	int rc;

	assert(f->has_synced);
	assert(f->cur.cap >= f->synced_size);
	rc = simdisk_buf_resize(&f->cur, f->synced_size);
	assert(rc == SQLITE_OK);
	(void)rc;
	for (uint32_t i = 0; i < f->saved_count; i++) {
		size_t off = (size_t)f->saved[i] * SIMDISK_PAGE_BYTES;
		size_t len = f->synced_size - off < SIMDISK_PAGE_BYTES
				     ? f->synced_size - off
				     : SIMDISK_PAGE_BYTES;
		assert(off < f->synced_size);
		memcpy(f->cur.bytes + off,
		       f->saved_bytes + (size_t)i * SIMDISK_PAGE_BYTES, len);
	}
	simdisk_file_synced(f);
	assert(f->cur.size == f->synced_size);
}

/* simdisk_disk_find returns the disk named name, or NULL; either way
 * *index (if not NULL) is where it is or would be inserted. */
static struct simdisk_disk *simdisk_disk_find(const struct simvfs *vfs, const char *name,
					      uint32_t *index)
{
	uint32_t lo = 0, hi = vfs->disk_count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(vfs->disks[mid]->name, name);
		if (c == 0) {
			lo = mid;
			break;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (index)
		*index = lo;
	if (lo < vfs->disk_count && strcmp(vfs->disks[lo]->name, name) == 0)
		return vfs->disks[lo];
	return NULL;
}

/* simdisk_disk_get returns the disk named name, creating it empty when it
 * is new. Returns NULL when out of memory or over LIMIT_SIM_DISKS_MAX. */
static struct simdisk_disk *simdisk_disk_get(struct simvfs *vfs, const char *name)
{
	uint32_t index;
	struct simdisk_disk *d = simdisk_disk_find(vfs, name, &index);

	if (d)
		return d;
	if (vfs->disk_count >= LIMIT_SIM_DISKS_MAX)
		return NULL;
	if (vfs->disk_count == vfs->disk_cap) {
		uint32_t cap = vfs->disk_cap ? vfs->disk_cap * 2 : 8;
		struct simdisk_disk **disks = realloc(vfs->disks, cap * sizeof *disks);
		if (!disks)
			return NULL;
		vfs->disks = disks;
		vfs->disk_cap = cap;
	}
	d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->vfs = vfs;
	d->name = strdup(name);
	if (!d->name) {
		free(d);
		return NULL;
	}
	memmove(&vfs->disks[index + 1], &vfs->disks[index],
		(vfs->disk_count - index) * sizeof vfs->disks[0]);
	vfs->disks[index] = d;
	vfs->disk_count++;
	assert(index == 0 || strcmp(vfs->disks[index - 1]->name, name) < 0);
	return d;
}

/* simdisk_file_find returns the file named name on d, or NULL; either way
 * *index is where it is or would be inserted. */
static struct simdisk_file *simdisk_file_find(const struct simdisk_disk *d,
					      const char *name, uint32_t *index)
{
	uint32_t lo = 0, hi = d->file_count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(d->files[mid]->name, name);
		if (c == 0) {
			lo = mid;
			break;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*index = lo;
	if (lo < d->file_count && strcmp(d->files[lo]->name, name) == 0)
		return d->files[lo];
	return NULL;
}

/* simdisk_file_link puts f on its disk at index (from simdisk_file_find),
 * taking a reference. Returns SQLITE_OK, SQLITE_FULL over
 * LIMIT_SIM_DISK_FILES_MAX, or SQLITE_NOMEM. */
static int simdisk_file_link(struct simdisk_file *f, uint32_t index)
{
	struct simdisk_disk *d = f->disk;

	assert(d != NULL);
	assert(!f->linked);
	assert(index <= d->file_count);
	if (d->file_count >= LIMIT_SIM_DISK_FILES_MAX)
		return SQLITE_FULL;
	if (d->file_count == d->file_cap) {
		uint32_t cap = d->file_cap ? d->file_cap * 2 : 8;
		struct simdisk_file **files = realloc(d->files, cap * sizeof *files);
		if (!files)
			return SQLITE_NOMEM;
		d->files = files;
		d->file_cap = cap;
	}
	memmove(&d->files[index + 1], &d->files[index],
		(d->file_count - index) * sizeof d->files[0]);
	d->files[index] = f;
	d->file_count++;
	f->linked = true;
	f->refs++;
	return SQLITE_OK;
}

/* simdisk_file_unlink takes the file at index off disk d and drops the
 * disk's reference to it. */
static void simdisk_file_unlink(struct simdisk_disk *d, uint32_t index)
{
	struct simdisk_file *f;

	assert(index < d->file_count);
	f = d->files[index];
	assert(f->linked);
	memmove(&d->files[index], &d->files[index + 1],
		(d->file_count - index - 1) * sizeof d->files[0]);
	d->file_count--;
	f->linked = false;
	simdisk_file_unref(f);
}

/* simdisk_path_split checks that path is "/DISK/FILE" (DISK of 1 to
 * LIMIT_NAME_BYTES_MAX bytes, FILE non-empty, neither holding '/', the
 * whole under LIMIT_SIM_PATH_BYTES_MAX) and copies DISK into disk
 * (LIMIT_NAME_BYTES_MAX + 1 bytes). Returns FILE (inside path), or NULL
 * when path is not of that form. */
static const char *simdisk_path_split(const char *path, char *disk)
{
	const char *slash;
	size_t disk_len;

	if (path[0] != '/' || strlen(path) >= LIMIT_SIM_PATH_BYTES_MAX)
		return NULL;
	slash = strchr(path + 1, '/');
	if (!slash)
		return NULL;
	disk_len = (size_t)(slash - (path + 1));
	if (disk_len == 0 || disk_len > LIMIT_NAME_BYTES_MAX)
		return NULL;
	if (slash[1] == '\0' || strchr(slash + 1, '/'))
		return NULL;
	memcpy(disk, path + 1, disk_len);
	disk[disk_len] = '\0';
	return slash + 1;
}

/* simdisk_lookup returns the file at path, or NULL when path is malformed
 * or names no file; *disk_out (if not NULL) gets the disk, or NULL when
 * it does not exist, and *index where the file is or would go. */
static struct simdisk_file *simdisk_lookup(const struct simvfs *vfs, const char *path,
					   struct simdisk_disk **disk_out,
					   uint32_t *index)
{
	char disk_name[LIMIT_NAME_BYTES_MAX + 1];
	const char *file_name = simdisk_path_split(path, disk_name);
	struct simdisk_disk *d = NULL;
	struct simdisk_file *f = NULL;
	uint32_t i = 0;

	if (file_name)
		d = simdisk_disk_find(vfs, disk_name, NULL);
	if (d)
		f = simdisk_file_find(d, file_name, &i);
	if (disk_out)
		*disk_out = d;
	if (index)
		*index = i;
	return f;
}

/* ---------------------------------------------------------------- io methods */

static struct simdisk_handle *simdisk_handle_of(sqlite3_file *file)
{
	struct simdisk_handle *h = (struct simdisk_handle *)file;
	assert(h->file != NULL);
	return h;
}

static int simdisk_unlock(sqlite3_file *file, int level);

static int simdisk_close(sqlite3_file *file)
{
	struct simdisk_handle *h = simdisk_handle_of(file);
	struct simdisk_file *f = h->file;

	simdisk_unlock(file, SQLITE_LOCK_NONE);
	assert(h->lock == SQLITE_LOCK_NONE);
	if (h->delete_on_close && f->linked && !simdisk_file_is_crashed(f)) {
		uint32_t index;
		struct simdisk_file *found = simdisk_file_find(f->disk, f->name, &index);
		assert(found == f);
		(void)found;
		simdisk_file_unlink(f->disk, index);
	}
	assert(h->vfs->handles_open > 0);
	h->vfs->handles_open--;
	h->file = NULL;
	simdisk_file_unref(f);
	return SQLITE_OK;
}

/* simdisk_read reads amount bytes at offset; past the end of the file it
 * fills with zeros and returns SQLITE_IOERR_SHORT_READ, as sqlite wants. */
static int simdisk_read(sqlite3_file *file, void *buf, int amount, sqlite3_int64 offset)
{
	const struct simdisk_file *f = simdisk_handle_of(file)->file;
	size_t want = (size_t)amount, got = 0;

	assert(amount >= 0);
	if (offset < 0)
		return SQLITE_IOERR_READ;
	if ((uint64_t)offset < f->cur.size) {
		size_t avail = f->cur.size - (size_t)offset;
		got = want < avail ? want : avail;
		if (got > 0)
			memcpy(buf, f->cur.bytes + offset, got);
	}
	if (got == want)
		return SQLITE_OK;
	memset((unsigned char *)buf + got, 0, want - got);
	return SQLITE_IOERR_SHORT_READ;
}

/* simdisk_write writes amount bytes at offset, growing the file (with
 * zeros in any gap). Returns SQLITE_OK (also when the disk is crashed and
 * the write is dropped), SQLITE_FULL past LIMIT_SIM_FILE_BYTES_MAX, or
 * SQLITE_IOERR_NOMEM. */
static int simdisk_write(sqlite3_file *file, const void *buf, int amount,
			 sqlite3_int64 offset)
{
	struct simdisk_handle *h = simdisk_handle_of(file);
	struct simdisk_file *f = h->file;
	uint32_t faults;
	uint64_t end;
	int rc;

	assert(amount >= 0);
	if (offset < 0)
		return SQLITE_IOERR_WRITE;
	end = (uint64_t)offset + (uint64_t)amount;
	if (end > LIMIT_SIM_FILE_BYTES_MAX)
		return SQLITE_FULL;
	if (simdisk_file_is_crashed(f))
		return SQLITE_OK;
	faults = simdisk_file_faults(f, h->vfs);
	if (faults & SIMVFS_FAULT_EIO_WRITE)
		return SQLITE_IOERR_WRITE;
	if ((faults & SIMVFS_FAULT_FULL) && end > f->cur.size)
		return SQLITE_FULL;
	rc = simdisk_file_will_change(f, (size_t)offset, (size_t)end);
	if (rc != SQLITE_OK)
		return rc;
	if (end > f->cur.size) {
		/* grown: zeros in the gap only, the rest is written over */
		if (!f->cur.bytes && f->disk && h->vfs->spare_count > 0) {
			struct simvfs *vfs = h->vfs;
			assert(f->cur.cap == 0 && f->cur.size == 0);
			f->cur.bytes = vfs->spares[--vfs->spare_count];
			f->cur.cap = vfs->spare_caps[vfs->spare_count];
			vfs->spares_taken++;
		}
		rc = simdisk_buf_reserve(&f->cur, (size_t)end);
		if (rc != SQLITE_OK)
			return rc;
		if ((size_t)offset > f->cur.size)
			memset(f->cur.bytes + f->cur.size, 0,
			       (size_t)offset - f->cur.size);
		f->cur.size = (size_t)end;
	}
	if (amount > 0)
		memcpy(f->cur.bytes + offset, buf, (size_t)amount);
	assert(f->cur.size >= end);
	return SQLITE_OK;
}

/* simdisk_truncate sets the file's size (growing with zeros). Returns
 * SQLITE_OK (also when dropped by a crash), SQLITE_FULL past the limit, or
 * SQLITE_IOERR_NOMEM. */
static int simdisk_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct simdisk_handle *h = simdisk_handle_of(file);
	struct simdisk_file *f = h->file;
	uint32_t faults;
	int rc;

	if (size < 0)
		return SQLITE_IOERR_TRUNCATE;
	if ((uint64_t)size > LIMIT_SIM_FILE_BYTES_MAX)
		return SQLITE_FULL;
	if (simdisk_file_is_crashed(f) || (uint64_t)size == f->cur.size)
		return SQLITE_OK;
	faults = simdisk_file_faults(f, h->vfs);
	if (faults & SIMVFS_FAULT_EIO_WRITE)
		return SQLITE_IOERR_TRUNCATE;
	if ((faults & SIMVFS_FAULT_FULL) && (uint64_t)size > f->cur.size)
		return SQLITE_FULL;
	rc = simdisk_file_will_change(f, (size_t)size, f->cur.size);
	if (rc != SQLITE_OK)
		return rc;
	return simdisk_buf_resize(&f->cur, (size_t)size);
}

static void simdisk_file_tear(struct simvfs *vfs, struct simdisk_file *f);

/* simdisk_sync makes the current bytes the synced image; dropped while the
 * disk is crashed. Fails with SQLITE_IOERR_FSYNC, syncing nothing, under
 * an EIO fault on sync. */
static int simdisk_sync(sqlite3_file *file, int flags)
{
	struct simdisk_handle *h = simdisk_handle_of(file);
	struct simdisk_file *f = h->file;

	uint32_t faults;

	if (simdisk_file_is_crashed(f))
		return SQLITE_OK;
	faults = simdisk_file_faults(f, h->vfs);
	if (faults & SIMVFS_FAULT_EIO_SYNC)
		return SQLITE_IOERR_FSYNC;
	if ((faults & SIMVFS_FAULT_TORN) && f->has_synced && f->linked &&
	    f->saved_count > 0) {
		/* the power fails in the middle of this sync: what reached the
		 * platter is all there is (see SIMVFS_FAULT_TORN) */
		simdisk_file_tear(h->vfs, f);
		return SQLITE_IOERR_FSYNC;
	}
	simdisk_file_synced(f);
	return SQLITE_OK;
}

static int simdisk_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	*size = (sqlite3_int64)simdisk_handle_of(file)->file->cur.size;
	return SQLITE_OK;
}

/* simdisk_lock raises the handle's lock to level (SHARED, RESERVED or
 * EXCLUSIVE; sqlite never asks for PENDING). Returns SQLITE_BUSY when
 * another handle's lock is in the way: a writer at PENDING or more keeps
 * new readers out; one writer at a time; EXCLUSIVE waits for the other
 * readers, holding PENDING meanwhile (as os_unix.c does). */
static int simdisk_lock(sqlite3_file *file, int level)
{
	struct simdisk_handle *h = simdisk_handle_of(file);
	struct simdisk_file *f = h->file;

	assert(level == SQLITE_LOCK_SHARED || level == SQLITE_LOCK_RESERVED ||
	       level == SQLITE_LOCK_EXCLUSIVE);
	if (h->lock >= level)
		return SQLITE_OK;
	switch (level) {
	case SQLITE_LOCK_SHARED:
		assert(h->lock == SQLITE_LOCK_NONE);
		if (f->writer && f->writer->lock >= SQLITE_LOCK_PENDING)
			return SQLITE_BUSY;
		f->shared_count++;
		h->lock = SQLITE_LOCK_SHARED;
		return SQLITE_OK;
	case SQLITE_LOCK_RESERVED:
		assert(h->lock == SQLITE_LOCK_SHARED);
		if (f->writer)
			return SQLITE_BUSY;
		f->writer = h;
		h->lock = SQLITE_LOCK_RESERVED;
		return SQLITE_OK;
	case SQLITE_LOCK_EXCLUSIVE:
		assert(h->lock >= SQLITE_LOCK_SHARED);
		if (f->writer && f->writer != h)
			return SQLITE_BUSY;
		f->writer = h;
		h->lock = SQLITE_LOCK_PENDING;
		assert(f->shared_count >= 1);
		if (f->shared_count > 1)
			return SQLITE_BUSY;
		h->lock = SQLITE_LOCK_EXCLUSIVE;
		return SQLITE_OK;
	default: return SQLITE_IOERR_LOCK;
	}
}

/* simdisk_unlock lowers the handle's lock to level (SHARED or NONE). Never
 * fails. */
static int simdisk_unlock(sqlite3_file *file, int level)
{
	struct simdisk_handle *h = simdisk_handle_of(file);
	struct simdisk_file *f = h->file;

	assert(level == SQLITE_LOCK_NONE || level == SQLITE_LOCK_SHARED);
	if (h->lock <= level)
		return SQLITE_OK;
	if (h->lock > SQLITE_LOCK_SHARED) {
		assert(f->writer == h);
		f->writer = NULL;
		h->lock = SQLITE_LOCK_SHARED;
	}
	if (level == SQLITE_LOCK_NONE) {
		assert(f->shared_count > 0);
		f->shared_count--;
		h->lock = SQLITE_LOCK_NONE;
	}
	assert(h->lock == level);
	return SQLITE_OK;
}

static int simdisk_check_reserved_lock(sqlite3_file *file, int *out)
{
	*out = simdisk_handle_of(file)->file->writer != NULL;
	return SQLITE_OK;
}

static int simdisk_file_control(sqlite3_file *file, int op, void *arg)
{
	return SQLITE_NOTFOUND;
}

static int simdisk_sector_size(sqlite3_file *file)
{
	return SIMDISK_SECTOR_BYTES;
}

/* A write changes only the bytes it names, even across a crash: the lost
 * writes fault reverts whole unsynced writes, never a neighbour's bytes. */
static int simdisk_device_characteristics(sqlite3_file *file)
{
	return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

/* Version 1: no xShm methods, hence no WAL (see the header). */
static const sqlite3_io_methods simdisk_io_methods = {
	.iVersion = 1,
	.xClose = simdisk_close,
	.xRead = simdisk_read,
	.xWrite = simdisk_write,
	.xTruncate = simdisk_truncate,
	.xSync = simdisk_sync,
	.xFileSize = simdisk_file_size,
	.xLock = simdisk_lock,
	.xUnlock = simdisk_unlock,
	.xCheckReservedLock = simdisk_check_reserved_lock,
	.xFileControl = simdisk_file_control,
	.xSectorSize = simdisk_sector_size,
	.xDeviceCharacteristics = simdisk_device_characteristics,
};

/* ---------------------------------------------------------------- vfs methods */

static struct simvfs *simdisk_vfs_of(sqlite3_vfs *base)
{
	struct simvfs *vfs = base->pAppData;
	assert(&vfs->base == base);
	return vfs;
}

/* simdisk_open opens path (from simdisk_full_pathname) or, when path is
 * NULL, a new temp file. Returns SQLITE_OK; SQLITE_CANTOPEN for a
 * malformed path, a missing file without SQLITE_OPEN_CREATE, or an
 * existing one with SQLITE_OPEN_EXCLUSIVE; SQLITE_FULL over a limit;
 * SQLITE_NOMEM. A file created on a crashed disk is never put on it. On
 * failure file->pMethods stays NULL, so sqlite does not call xClose. */
static int simdisk_open(sqlite3_vfs *base, const char *path, sqlite3_file *file,
			int flags, int *out_flags)
{
	struct simvfs *vfs = simdisk_vfs_of(base);
	struct simdisk_handle *h = (struct simdisk_handle *)file;
	struct simdisk_file *f;
	bool create = (flags & SQLITE_OPEN_CREATE) != 0;

	memset(h, 0, sizeof *h);
	if (!path) {
		f = simdisk_file_new(NULL, NULL);
		if (!f)
			return SQLITE_NOMEM;
	} else {
		char disk_name[LIMIT_NAME_BYTES_MAX + 1];
		const char *file_name = simdisk_path_split(path, disk_name);
		struct simdisk_disk *d;
		uint32_t index;

		if (!file_name)
			return SQLITE_CANTOPEN;
		d = simdisk_disk_find(vfs, disk_name, NULL);
		if (!d && !create)
			return SQLITE_CANTOPEN;
		if (!d) {
			d = simdisk_disk_get(vfs, disk_name);
			if (!d)
				return SQLITE_NOMEM;
		}
		f = simdisk_file_find(d, file_name, &index);
		if (f && create && (flags & SQLITE_OPEN_EXCLUSIVE))
			return SQLITE_CANTOPEN;
		if (!f && !create)
			return SQLITE_CANTOPEN;
		if (!f) {
			f = simdisk_file_new(d, file_name);
			if (!f)
				return SQLITE_NOMEM;
			if (!d->crashed) {
				int rc = simdisk_file_link(f, index);
				if (rc != SQLITE_OK) {
					simdisk_file_free(f);
					return rc;
				}
			}
		}
	}
	f->refs++;
	h->vfs = vfs;
	h->file = f;
	h->lock = SQLITE_LOCK_NONE;
	h->delete_on_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
	vfs->handles_open++;
	h->base.pMethods = &simdisk_io_methods;
	if (out_flags)
		*out_flags = flags;
	return SQLITE_OK;
}

/* simdisk_delete removes path from its disk; open handles keep the file
 * until they close. Returns SQLITE_OK (also when the disk is crashed: the
 * delete is dropped), or SQLITE_IOERR_DELETE_NOENT when there is no such
 * file. */
static int simdisk_delete(sqlite3_vfs *base, const char *path, int sync_dir)
{
	struct simvfs *vfs = simdisk_vfs_of(base);
	struct simdisk_disk *d;
	uint32_t index = 0;
	struct simdisk_file *f = simdisk_lookup(vfs, path, &d, &index);

	if (d && d->crashed)
		return SQLITE_OK;
	if (!f)
		return SQLITE_IOERR_DELETE_NOENT;
	simdisk_file_unlink(d, index);
	return SQLITE_OK;
}

/* simdisk_access sets *result to whether path exists (every file is
 * readable and writable). Never fails. */
static int simdisk_access(sqlite3_vfs *base, const char *path, int flags, int *result)
{
	*result = simdisk_lookup(simdisk_vfs_of(base), path, NULL, NULL) != NULL;
	return SQLITE_OK;
}

/* simdisk_full_pathname copies path, which must already be "/DISK/FILE":
 * there is no current directory. Returns SQLITE_OK, or SQLITE_CANTOPEN for
 * any other form or when it does not fit in out_size bytes. */
static int simdisk_full_pathname(sqlite3_vfs *base, const char *path, int out_size,
				 char *out)
{
	char disk_name[LIMIT_NAME_BYTES_MAX + 1];
	size_t len = strlen(path);

	if (!simdisk_path_split(path, disk_name) || out_size < 0 ||
	    len >= (size_t)out_size)
		return SQLITE_CANTOPEN;
	memcpy(out, path, len + 1);
	return SQLITE_OK;
}

/* No loadable extensions in the simulator: every dl method fails. */
static void *simdisk_dl_open(sqlite3_vfs *base, const char *path)
{
	return NULL;
}

static void simdisk_dl_error(sqlite3_vfs *base, int size, char *msg)
{
	if (size > 0)
		snprintf(msg, (size_t)size, "%s", "simdisk: no loadable extensions");
}

static void (*simdisk_dl_sym(sqlite3_vfs *base, void *handle, const char *symbol))(void)
{
	return NULL;
}

static void simdisk_dl_close(sqlite3_vfs *base, void *handle)
{
}

/* simdisk_randomness fills out with size bytes from the world's stream. */
static int simdisk_randomness(sqlite3_vfs *base, int size, char *out)
{
	struct simvfs *vfs = simdisk_vfs_of(base);

	if (size <= 0)
		return 0;
	vfs->random(vfs->ctx, out, (size_t)size);
	return size;
}

/* Virtual time does not pass while sqlite waits: return at once, claiming
 * the full sleep. */
static int simdisk_sleep(sqlite3_vfs *base, int us)
{
	return us;
}

static int simdisk_current_time_int64(sqlite3_vfs *base, sqlite3_int64 *out)
{
	struct simvfs *vfs = simdisk_vfs_of(base);

	*out = (sqlite3_int64)vfs->now(vfs->ctx) + SIMDISK_UNIX_EPOCH_JULIAN_MS;
	return SQLITE_OK;
}

static int simdisk_current_time(sqlite3_vfs *base, double *out)
{
	sqlite3_int64 julian_ms;

	simdisk_current_time_int64(base, &julian_ms);
	*out = (double)julian_ms / SIMDISK_DAY_MS;
	return SQLITE_OK;
}

static int simdisk_get_last_error(sqlite3_vfs *base, int size, char *msg)
{
	if (size > 0)
		msg[0] = '\0';
	return 0;
}

/* ---------------------------------------------------------------- public API */

struct simvfs *simvfs_create(const char *name, simvfs_now_fn now, simvfs_random_fn random,
			     void *ctx)
{
	struct simvfs *vfs;
	unsigned char prime;

	if (!name || !name[0] || !now || !random)
		return NULL;
	/* No bulk page cache (issue 18): by default sqlite allocates 20 pages
	 * (some 87 KiB) up front for every page cache, twice per connection,
	 * which was two thirds of a simulated worker's memory (its agent
	 * database holds a few pages). Pages are then allocated as used;
	 * nothing sqlite does changes. sqlite takes this only before it is
	 * initialised (SQLITE_MISUSE after, ignored: the default then stays,
	 * at a cost in memory only). */
	(void)sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)NULL, 0, 0);
	if (sqlite3_initialize() != SQLITE_OK || sqlite3_vfs_find(name))
		return NULL;
	/* see SIMVFS_SQLITE_SOFT_BYTES: a page cache over it gives back
	 * pages it holds instead of growing; they are read again from the
	 * simulated disk when wanted, and no query's answer changes */
	(void)sqlite3_soft_heap_limit64(SIMVFS_SQLITE_SOFT_BYTES);
	vfs = calloc(1, sizeof *vfs);
	if (!vfs)
		return NULL;
	vfs->name = strdup(name);
	if (!vfs->name)
		goto free_vfs;
	vfs->now = now;
	vfs->random = random;
	vfs->ctx = ctx;
	vfs->base = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct simdisk_handle),
		.mxPathname = (int)LIMIT_SIM_PATH_BYTES_MAX,
		.zName = vfs->name,
		.pAppData = vfs,
		.xOpen = simdisk_open,
		.xDelete = simdisk_delete,
		.xAccess = simdisk_access,
		.xFullPathname = simdisk_full_pathname,
		.xDlOpen = simdisk_dl_open,
		.xDlError = simdisk_dl_error,
		.xDlSym = simdisk_dl_sym,
		.xDlClose = simdisk_dl_close,
		.xRandomness = simdisk_randomness,
		.xSleep = simdisk_sleep,
		.xCurrentTime = simdisk_current_time,
		.xGetLastError = simdisk_get_last_error,
		.xCurrentTimeInt64 = simdisk_current_time_int64,
	};
	if (sqlite3_vfs_register(&vfs->base, 1) != SQLITE_OK)
		goto free_name;
	/* Reset sqlite's process-wide PRNG and draw one byte, so it reseeds
	 * now, from this VFS (the default), whatever is registered later. */
	sqlite3_randomness(0, NULL);
	sqlite3_randomness(1, &prime);
	return vfs;

free_name:
	free(vfs->name);
free_vfs:
	free(vfs);
	return NULL;
}

void simvfs_destroy(struct simvfs *vfs)
{
	if (!vfs)
		return;
	assert(vfs->handles_open == 0);
	sqlite3_vfs_unregister(&vfs->base);
	for (uint32_t i = 0; i < vfs->disk_count; i++) {
		struct simdisk_disk *d = vfs->disks[i];
		while (d->file_count > 0)
			simdisk_file_unlink(d, d->file_count - 1);
		free(d->files);
		free(d->name);
		free(d);
	}
	free(vfs->disks);
	for (uint32_t i = 0; i < vfs->spare_count; i++)
		free(vfs->spares[i]);
	free(vfs->name);
	free(vfs);
}

uint64_t simvfs_spares_taken(const struct simvfs *vfs)
{
	return vfs->spares_taken;
}

/* simvfs_name_ok checks a disk or file name: non-empty, no '/'. */
static bool simvfs_name_ok(const char *name)
{
	return name && name[0] && !strchr(name, '/');
}

int simvfs_open(struct simvfs *vfs, const char *disk, const char *file,
		struct sqlite3 **db, char *err, size_t err_size)
{
	char path[LIMIT_SIM_PATH_BYTES_MAX];
	const char *msg;
	sqlite3 *conn = NULL;
	int n, rc;

	assert(vfs != NULL);
	assert(db != NULL);
	*db = NULL;
	if (!simvfs_name_ok(disk) || !simvfs_name_ok(file)) {
		if (err && err_size > 0)
			snprintf(err, err_size, "simdisk: bad disk or file name");
		return CS_EINVAL;
	}
	n = snprintf(path, sizeof path, "/%s/%s", disk, file);
	if (n < 0 || (size_t)n >= sizeof path || strlen(disk) > LIMIT_NAME_BYTES_MAX) {
		if (err && err_size > 0)
			snprintf(err, err_size, "simdisk: disk or file name too long");
		return CS_ELIMIT;
	}
	rc = sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			     vfs->name);
	if (rc == SQLITE_OK) {
		*db = conn;
		return 0;
	}
	msg = conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc);
	if (err && err_size > 0)
		snprintf(err, err_size, "%s: %s", path, msg);
	sqlite3_close(conn);
	return CS_ESTORAGE;
}

void simvfs_crash_begin(struct simvfs *vfs, const char *disk)
{
	/* An unknown disk is created so that files its node opens while dead
	 * stay off it; when even that fails (out of memory) the disk holds
	 * nothing to protect. */
	struct simdisk_disk *d = simdisk_disk_get(vfs, disk);

	if (d) {
		d->crashed = true;
		d->torn = d->faults & SIMVFS_FAULT_TORN &&
			  vfs->now(vfs->ctx) < d->fault_until;
	}
}

/* A draw in [0, n) from the VFS's randomness (n > 0). */
static uint32_t simdisk_draw(struct simvfs *vfs, uint32_t n)
{
	uint32_t x = 0;

	assert(n > 0);
	vfs->random(vfs->ctx, &x, sizeof x);
	return x % n;
}

/* simdisk_file_tear puts f back to its synced image as a crash in the
 * middle of writing its unsynced pages does: each page written since the
 * last sync (in saved-slot order, which is the order of the first change)
 * keeps the new bytes of a drawn run of its SIMDISK_TEAR_BYTES sectors, the
 * synced ones elsewhere: none, some (a torn page) or all. Bytes written past
 * the synced size are lost (the size goes back). Never allocates. */
#define SIMDISK_TEAR_BYTES 512u
_Static_assert(SIMDISK_PAGE_BYTES % SIMDISK_TEAR_BYTES == 0, "sectors tile a page");
static void simdisk_file_tear(struct simvfs *vfs, struct simdisk_file *f)
{
	const uint32_t sectors = SIMDISK_PAGE_BYTES / SIMDISK_TEAR_BYTES;

	assert(f->has_synced);
	for (uint32_t i = 0; i < f->saved_count; i++) {
		size_t off = (size_t)f->saved[i] * SIMDISK_PAGE_BYTES;
		size_t len = f->synced_size - off < SIMDISK_PAGE_BYTES
				     ? f->synced_size - off
				     : SIMDISK_PAGE_BYTES;
		uint32_t from = simdisk_draw(vfs, sectors + 1);
		uint32_t to = from + simdisk_draw(vfs, sectors + 1 - from);
		unsigned char *saved = f->saved_bytes + (size_t)i * SIMDISK_PAGE_BYTES;

		/* sectors [from, to) reached the platter: the saved image
		 * takes the current bytes there (bytes past cur.size were cut
		 * by a truncate: they stay synced) */
		for (uint32_t s = from; s < to; s++) {
			size_t a = off + (size_t)s * SIMDISK_TEAR_BYTES, b;
			if (a >= off + len || a >= f->cur.size)
				break;
			b = a + SIMDISK_TEAR_BYTES;
			if (b > off + len)
				b = off + len;
			if (b > f->cur.size)
				b = f->cur.size;
			memcpy(saved + (a - off), f->cur.bytes + a, b - a);
		}
	}
	simdisk_file_revert(f);
}

void simvfs_crash_end(struct simvfs *vfs, const char *disk, bool lose_unsynced)
{
	struct simdisk_disk *d = simdisk_disk_find(vfs, disk, NULL);
	uint32_t kept = 0;

	if (!d)
		return;
	d->crashed = false;
	if (!lose_unsynced) {
		d->torn = false;
		return;
	}
	for (uint32_t i = 0; i < d->file_count; i++) {
		struct simdisk_file *f = d->files[i];
		if (!f->has_synced) {
			f->linked = false;
			simdisk_file_unref(f);
			continue;
		}
		if (d->torn)
			simdisk_file_tear(vfs, f);
		else
			simdisk_file_revert(f);
		d->files[kept++] = f;
	}
	d->file_count = kept;
	d->torn = false;
}

uint64_t simvfs_disk_bytes(const struct simvfs *vfs, const char *disk)
{
	const struct simdisk_disk *d = simdisk_disk_find(vfs, disk, NULL);
	uint64_t bytes = 0;

	if (!d)
		return 0;
	for (uint32_t i = 0; i < d->file_count; i++)
		bytes += d->files[i]->cur.size;
	return bytes;
}

/* simvfs_disk_hash: FNV-1a over, per file in name order, its name with its
 * NUL, its size (8 bytes, little-endian) and its bytes; then splitmix64's
 * finaliser, so that near inputs land far apart. */
uint64_t simvfs_disk_hash(const struct simvfs *vfs, const char *disk)
{
	const struct simdisk_disk *d = simdisk_disk_find(vfs, disk, NULL);
	uint64_t h = HASH_FNV_OFFSET;

	if (!d || d->file_count == 0)
		return 0;
	for (uint32_t i = 0; i < d->file_count; i++) {
		const struct simdisk_file *f = d->files[i];
		unsigned char size_le[8];
		uint64_t size = f->cur.size;
		for (int b = 0; b < 8; b++)
			size_le[b] = (unsigned char)(size >> (8 * b));
		h = hash_fnv(h, f->name, strlen(f->name) + 1);
		h = hash_fnv(h, size_le, sizeof size_le);
		h = hash_fnv(h, f->cur.bytes, f->cur.size);
	}
	return hash_mix64(h);
}

int simvfs_fault(struct simvfs *vfs, const char *disk, uint32_t faults, int64_t until)
{
	struct simdisk_disk *d;
	int64_t now = vfs->now(vfs->ctx);

	if (faults & ~(uint32_t)SIMVFS_FAULT_ALL)
		return CS_EINVAL;
	d = simdisk_disk_get(vfs, disk);
	if (!d)
		return CS_ENOMEM;
	if (faults == 0) {
		/* ok: the fault ends now */
		if (d->faults && d->fault_until > now && d->healthy_from > now)
			d->healthy_from = now;
		d->faults = 0;
		d->fault_until = 0;
		return 0;
	}
	d->faults = faults;
	d->fault_until = until;
	if (until > vfs->faults_until)
		vfs->faults_until = until;
	if (until > d->healthy_from)
		d->healthy_from = until;
	return 0;
}

int64_t simvfs_faults_until(const struct simvfs *vfs)
{
	return vfs->faults_until;
}

bool simvfs_faulted(const struct simvfs *vfs, const char *disk)
{
	const struct simdisk_disk *d = simdisk_disk_find(vfs, disk, NULL);
	return d && d->faults && vfs->now(vfs->ctx) < d->fault_until;
}

int64_t simvfs_healthy_from(const struct simvfs *vfs, const char *disk)
{
	const struct simdisk_disk *d = simdisk_disk_find(vfs, disk, NULL);
	return d ? d->healthy_from : 0;
}

static uint32_t simdisk_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* simdisk_live_page draws a page of f (of page_count) that its reader will
 * read again: for an sqlite database of SIMDISK_PAGE_BYTES pages, one not on
 * its freelist (a flip in a free page is never seen: it would make `disk
 * NODE fault=corrupt` a no-op by chance); any page otherwise (a journal, or
 * when the freelist does not parse). */
static uint32_t simdisk_live_page(struct simvfs *vfs, const struct simdisk_file *f,
				  uint32_t page_count)
{
	static const char magic[16] = "SQLite format 3";
	const unsigned char *b = f->cur.bytes;
	unsigned char *free_map;
	uint32_t trunk, live, pick, walked = 0;

	if (f->cur.size < 100 || memcmp(b, magic, sizeof magic) != 0 ||
	    ((uint32_t)b[16] << 8 | b[17]) != SIMDISK_PAGE_BYTES ||
	    !(free_map = calloc(page_count, 1)))
		return simdisk_draw(vfs, page_count);
	/* trunk pages: next trunk, leaf count, leaf page numbers (1-based) */
	trunk = simdisk_be32(b + 32);
	while (trunk != 0 && trunk <= page_count && walked++ < page_count) {
		const unsigned char *t = b + (size_t)(trunk - 1) * SIMDISK_PAGE_BYTES;
		uint32_t leaves;
		if ((size_t)trunk * SIMDISK_PAGE_BYTES > f->cur.size)
			break;
		free_map[trunk - 1] = 1;
		leaves = simdisk_be32(t + 4);
		for (uint32_t i = 0; i < leaves && i < SIMDISK_PAGE_BYTES / 4 - 2; i++) {
			uint32_t leaf = simdisk_be32(t + 8 + 4 * i);
			if (leaf >= 1 && leaf <= page_count)
				free_map[leaf - 1] = 1;
		}
		trunk = simdisk_be32(t);
	}
	live = 0;
	for (uint32_t i = 0; i < page_count; i++)
		live += !free_map[i];
	pick = simdisk_draw(vfs, live ? live : page_count);
	for (uint32_t i = 0; i < page_count && live; i++) {
		if (free_map[i])
			continue;
		if (pick-- == 0) {
			free(free_map);
			return i;
		}
	}
	free(free_map);
	return pick;
}

/* ------------------------------------------------- sqlite b-tree regions */

/* `disk NODE fault=corrupt table=NAME` flips bits only in the rows of one
 * b-tree of an sqlite database (a table's or an index's, named as in
 * sqlite_schema): in its cells' payloads (the records: a row's values, an
 * index's keys), in its leaf pages and its overflow pages. Never in the
 * b-tree's structure (page headers, cell pointers, child pointers, rowids,
 * payload lengths: sqlite reports those as a malformed file), nor in a
 * page's unallocated middle (never read): sqlite reads every row still,
 * and its reader finds the values altered. The walk reads the file's bytes
 * before any flip, bounds every offset by the page and visits a page at
 * most once. */

/* one byte range a reader of the b-tree reads: [off, off + len) of page */
struct simdisk_span {
	uint32_t page; /* 0-based */
	uint32_t off, len;
};

struct simdisk_btree {
	const unsigned char *b; /* the file's bytes */
	uint32_t page_count, usable;
	unsigned char *seen; /* page_count flags: visited */
	struct simdisk_span *spans;
	uint32_t span_count, span_cap;
	/* sqlite_schema's walk: the name sought, the root page found (0: none) */
	const char *name;
	uint32_t root;
};

static int simdisk_span_add(struct simdisk_btree *t, uint32_t page, uint32_t off,
			    uint32_t len)
{
	if (len == 0)
		return 0;
	if (t->span_count == t->span_cap) {
		uint32_t cap = t->span_cap ? 2 * t->span_cap : 64;
		struct simdisk_span *s = realloc(t->spans, (size_t)cap * sizeof *s);
		if (!s)
			return CS_ENOMEM;
		t->spans = s;
		t->span_cap = cap;
	}
	t->spans[t->span_count++] = (struct simdisk_span){page, off, len};
	return 0;
}

/* Reads sqlite's varint at p (at most end - p bytes) into *v. Returns its
 * length, 0 when it runs past end. */
static uint32_t simdisk_varint(const unsigned char *p, const unsigned char *end,
			       uint64_t *v)
{
	uint64_t x = 0;

	for (uint32_t i = 0; i < 9; i++) {
		if (p + i >= end)
			return 0;
		if (i == 8) {
			*v = x << 8 | p[i];
			return 9;
		}
		x = x << 7 | (p[i] & 0x7f);
		if (!(p[i] & 0x80)) {
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

/* sqlite's local part of a payload of P bytes (file format, "Cell Payload
 * Overflow Pages"): max_local X is U-35 in a table leaf, else
 * ((U-12)*64/255)-23. */
static uint64_t simdisk_local(uint32_t usable, bool table_leaf, uint64_t payload)
{
	uint64_t x = table_leaf ? usable - 35 : ((uint64_t)usable - 12) * 64 / 255 - 23;
	uint64_t m = ((uint64_t)usable - 12) * 32 / 255 - 23;
	uint64_t k;

	if (payload <= x)
		return payload;
	k = m + (payload - m) % (usable - 4);
	return k <= x ? k : m;
}

/* Records the overflow chain from page first holding rest bytes. */
static int simdisk_overflow(struct simdisk_btree *t, uint32_t first, uint64_t rest)
{
	uint32_t page = first;

	while (rest > 0 && page >= 1 && page <= t->page_count && !t->seen[page - 1]) {
		const unsigned char *o = t->b + (size_t)(page - 1) * SIMDISK_PAGE_BYTES;
		uint64_t here = rest < t->usable - 4 ? rest : t->usable - 4;
		int rv;

		t->seen[page - 1] = 1;
		rv = simdisk_span_add(t, page - 1, 4, (uint32_t)here);
		if (rv)
			return rv;
		rest -= here;
		page = simdisk_be32(o);
	}
	return 0;
}

/* In sqlite_schema's row (the local payload rec of len bytes): when its
 * name (column 1) is t->name, takes its rootpage (column 3). */
static void simdisk_schema_row(struct simdisk_btree *t, const unsigned char *rec,
			       uint64_t len)
{
	const unsigned char *end = rec + len, *hp, *body;
	uint64_t hdr, type[4], at = 0;
	uint32_t n;

	n = simdisk_varint(rec, end, &hdr);
	if (n == 0 || hdr > len)
		return;
	hp = rec + n;
	body = rec + hdr;
	for (int c = 0; c < 4; c++) {
		n = simdisk_varint(hp, rec + hdr, &type[c]);
		if (n == 0)
			return;
		hp += n;
	}
	/* column sizes of serial types 0-9, then blobs and texts */
	static const uint8_t fixed[10] = {0, 1, 2, 3, 4, 6, 8, 8, 0, 0};
	for (int c = 0; c < 4; c++) {
		uint64_t size = type[c] < 10	? fixed[type[c]]
				: type[c] >= 12 ? (type[c] - 12) / 2
						: UINT64_MAX;
		if (size == UINT64_MAX || size > (uint64_t)(end - body) - at)
			return;
		if (c == 1 &&
		    (type[1] < 13 || !(type[1] & 1) || size != strlen(t->name) ||
		     memcmp(body + at, t->name, size) != 0))
			return;
		if (c == 3) {
			uint64_t root = 0;
			if (type[3] < 1 || type[3] > 6)
				return;
			for (uint64_t i = 0; i < size; i++)
				root = root << 8 | body[at + i];
			if (root >= 1 && root <= t->page_count && t->root == 0)
				t->root = (uint32_t)root;
		}
		at += size;
	}
}

/* Walks the b-tree from page root (1-based): records its spans, or, with
 * t->name set, looks its leaf rows up for t->name's root page. */
static int simdisk_btree_walk(struct simdisk_btree *t, uint32_t root)
{
	uint32_t *stack, depth = 0;
	int rv = 0;

	stack = malloc((size_t)t->page_count * sizeof *stack);
	if (!stack)
		return CS_ENOMEM;
	stack[depth++] = root;
	while (depth > 0 && rv == 0) {
		uint32_t page = stack[--depth], hdr = page == 1 ? 100 : 0;
		const unsigned char *p, *end;
		uint32_t cells, head, kind;
		bool interior, table;

		if (page < 1 || page > t->page_count || t->seen[page - 1])
			continue;
		t->seen[page - 1] = 1;
		p = t->b + (size_t)(page - 1) * SIMDISK_PAGE_BYTES;
		end = p + t->usable;
		kind = p[hdr];
		if (kind != 0x02 && kind != 0x05 && kind != 0x0a && kind != 0x0d)
			continue; /* not a b-tree page: a flip made it so, or no walk */
		interior = kind == 0x02 || kind == 0x05;
		table = kind == 0x05 || kind == 0x0d;
		head = hdr + (interior ? 12 : 8);
		cells = (uint32_t)p[hdr + 3] << 8 | p[hdr + 4];
		if (head + 2 * cells > t->usable)
			continue;
		if (interior && depth < t->page_count)
			stack[depth++] = simdisk_be32(p + hdr + 8);
		for (uint32_t i = 0; i < cells && rv == 0; i++) {
			uint32_t off =
				(uint32_t)p[head + 2 * i] << 8 | p[head + 2 * i + 1];
			const unsigned char *c = p + off;
			uint64_t payload = 0, local = 0, rowid;
			uint32_t n;

			if (off < head + 2 * cells || off >= t->usable)
				continue;
			if (interior) {
				if (c + 4 > end)
					continue;
				if (depth < t->page_count)
					stack[depth++] = simdisk_be32(c);
				c += 4;
			}
			if (!(interior && table)) {
				n = simdisk_varint(c, end, &payload);
				if (n == 0)
					continue;
				c += n;
			}
			if (table) {
				n = simdisk_varint(c, end, &rowid);
				if (n == 0)
					continue;
				c += n;
			}
			if (!(interior && table)) {
				local = simdisk_local(t->usable, table, payload);
				if (local > (uint64_t)(end - c) ||
				    (local < payload && local + 4 > (uint64_t)(end - c)))
					continue;
				if (t->name && table && !interior)
					simdisk_schema_row(t, c, local);
				if (!t->name)
					rv = simdisk_span_add(t, page - 1,
							      (uint32_t)(c - p),
							      (uint32_t)local);
				c += local;
			}
			if (local < payload && !t->name && rv == 0)
				rv = simdisk_overflow(t, simdisk_be32(c),
						      payload - local);
		}
	}
	free(stack);
	return rv;
}

/* Finds the b-tree of table (or index) name in sqlite database f and
 * records its spans in *t (t->spans is the caller's to free). Returns 0
 * (no spans when f is not such a database or has no such b-tree) or
 * CS_ENOMEM. */
static int simdisk_btree_spans(const struct simdisk_file *f, const char *name,
			       struct simdisk_btree *t)
{
	static const char magic[16] = "SQLite format 3";
	const unsigned char *b = f->cur.bytes;
	uint32_t root;
	int rv;

	memset(t, 0, sizeof *t);
	if (f->cur.size < 100 || memcmp(b, magic, sizeof magic) != 0 ||
	    ((uint32_t)b[16] << 8 | b[17]) != SIMDISK_PAGE_BYTES || b[20] > 32)
		return 0;
	t->b = b;
	t->page_count = (uint32_t)(f->cur.size / SIMDISK_PAGE_BYTES);
	t->usable = SIMDISK_PAGE_BYTES - b[20];
	t->seen = calloc(t->page_count ? t->page_count : 1, 1);
	if (!t->seen)
		return CS_ENOMEM;
	/* sqlite_schema (root page 1) gives the b-tree's root page */
	t->name = name;
	rv = simdisk_btree_walk(t, 1);
	root = t->root;
	t->name = NULL;
	memset(t->seen, 0, t->page_count);
	if (rv == 0 && root != 0)
		rv = simdisk_btree_walk(t, root);
	free(t->seen);
	t->seen = NULL;
	return rv;
}

/* Flips bit `bit` of byte `at` of f's page: in the bytes reads see and in
 * the platter's copy (a crash does not undo it). */
static void simdisk_flip(struct simdisk_file *f, uint32_t page, size_t at, uint32_t bit)
{
	size_t off = (size_t)page * SIMDISK_PAGE_BYTES;

	assert(off + at < f->cur.size);
	assert(bit < 8);
	f->cur.bytes[off + at] ^= (unsigned char)(1u << bit);
	if (page < f->slot_cap && f->slot_of[page] != 0) {
		uint32_t slot = f->slot_of[page] - 1;
		size_t slen = f->synced_size - off < SIMDISK_PAGE_BYTES
				      ? f->synced_size - off
				      : SIMDISK_PAGE_BYTES;
		if (at < slen)
			f->saved_bytes[(size_t)slot * SIMDISK_PAGE_BYTES + at] ^=
				(unsigned char)(1u << bit);
	}
}

/* simdisk_corrupt_btree flips a bit in each of `pages` pages drawn among
 * those of b-tree `table` of f, the bit drawn among the page's spans.
 * Returns 0 (*flipped 0: no such b-tree) or CS_ENOMEM. */
static int simdisk_corrupt_btree(struct simvfs *vfs, struct simdisk_file *f,
				 const char *table, uint32_t pages, uint32_t *flipped)
{
	struct simdisk_btree t;
	unsigned char *has;
	uint32_t distinct = 0;
	int rv = simdisk_btree_spans(f, table, &t);

	if (rv || t.span_count == 0) {
		free(t.spans);
		return rv;
	}
	has = calloc(t.page_count, 1);
	if (!has) {
		free(t.spans);
		return CS_ENOMEM;
	}
	for (uint32_t i = 0; i < t.span_count; i++) {
		distinct += !has[t.spans[i].page];
		has[t.spans[i].page] = 1;
	}
	for (uint32_t n = 0; n < pages; n++) {
		uint32_t pick = simdisk_draw(vfs, distinct), page = 0;
		uint64_t bytes = 0, at;

		/* the pick-th page holding spans, in page order */
		for (uint32_t p = 0; p < t.page_count; p++) {
			if (has[p] && pick-- == 0) {
				page = p;
				break;
			}
		}
		for (uint32_t i = 0; i < t.span_count; i++)
			bytes += t.spans[i].page == page ? t.spans[i].len : 0;
		assert(bytes > 0);
		at = simdisk_draw(vfs, (uint32_t)bytes * 8u);
		for (uint32_t i = 0; i < t.span_count; i++) {
			const struct simdisk_span *s = &t.spans[i];
			if (s->page != page)
				continue;
			if (at < (uint64_t)s->len * 8) {
				simdisk_flip(f, page, s->off + at / 8,
					     (uint32_t)(at % 8));
				break;
			}
			at -= (uint64_t)s->len * 8;
		}
		(*flipped)++;
	}
	free(has);
	free(t.spans);
	return 0;
}

int simvfs_corrupt(struct simvfs *vfs, const char *disk, const char *file,
		   const char *table, uint32_t pages, uint32_t *flipped)
{
	struct simdisk_disk *d = simdisk_disk_find(vfs, disk, NULL);
	uint32_t done = 0;

	*flipped = 0;
	if (!d || pages == 0)
		return 0;
	if (table) {
		uint32_t index;
		struct simdisk_file *f = file ? simdisk_file_find(d, file, &index) : NULL;
		return f ? simdisk_corrupt_btree(vfs, f, table, pages, flipped) : 0;
	}
	for (uint32_t n = 0; n < pages; n++) {
		/* the file: the named one, or one drawn among those holding
		 * bytes (in name order) */
		struct simdisk_file *f = NULL;
		uint32_t page_count, page, bit;
		size_t len;

		if (file) {
			uint32_t index;
			f = simdisk_file_find(d, file, &index);
		} else {
			uint32_t candidates = 0, pick;
			for (uint32_t i = 0; i < d->file_count; i++)
				candidates += d->files[i]->cur.size > 0;
			if (candidates == 0)
				break;
			pick = simdisk_draw(vfs, candidates);
			for (uint32_t i = 0; i < d->file_count; i++) {
				if (d->files[i]->cur.size == 0)
					continue;
				if (pick-- == 0) {
					f = d->files[i];
					break;
				}
			}
		}
		if (!f || f->cur.size == 0)
			break;
		page_count = simdisk_pages(f->cur.size);
		page = simdisk_live_page(vfs, f, page_count);
		len = f->cur.size - (size_t)page * SIMDISK_PAGE_BYTES < SIMDISK_PAGE_BYTES
			      ? f->cur.size - (size_t)page * SIMDISK_PAGE_BYTES
			      : SIMDISK_PAGE_BYTES;
		bit = simdisk_draw(vfs, (uint32_t)len * 8u);
		simdisk_flip(f, page, bit / 8, bit % 8);
		done++;
	}
	*flipped = done;
	return 0;
}
