/* simdisk: the simulated disks of one world, as an sqlite VFS. Every node
 * has a disk (a set of named in-memory files) owned by the world, so it
 * survives a crash of its node. sqlite's time and randomness come from the
 * world through the callbacks given at creation, so a seed replays exactly.
 * Each file keeps its current bytes and the bytes at its last xSync; a crash
 * may drop what was written since (the "lost unsynced writes" fault).
 *
 * The VFS has no shared-memory methods: databases on it use a rollback
 * journal (journal_mode=DELETE/TRUNCATE/PERSIST/MEMORY), not WAL. All calls
 * on one thread. */
#ifndef SIM_SIMDISK_H
#define SIM_SIMDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct simvfs;

/* Time for sqlite's xCurrentTimeInt64: milliseconds since the Unix epoch. */
typedef int64_t (*simvfs_now_fn)(void *ctx);
/* Randomness for sqlite's xRandomness: fill buf with size bytes. */
typedef void (*simvfs_random_fn)(void *ctx, void *buf, size_t size);

/* simvfs_create registers a new VFS named `name` (copied) with sqlite,
 * makes it sqlite's default VFS and resets sqlite's PRNG so that it reseeds
 * from `random`: two worlds created with the same seed see the same sqlite
 * randomness. The reseed draws from `random` before simvfs_create returns,
 * so ctx must be ready. Returns NULL when out of memory, registration
 * fails, or a VFS named `name` is registered already. Borrows ctx for the
 * VFS's life. */
struct simvfs *simvfs_create(const char *name, simvfs_now_fn now, simvfs_random_fn random,
			     void *ctx);

/* The soft bound on all sqlite's memory in the process that simvfs_create
 * sets (sqlite3_soft_heap_limit64; issue 18). Every page a simulated
 * database holds is also on its simulated disk, in memory: three managers'
 * Raft logs kept 16 MiB page caches each (cache_size in core/raftio.c,
 * for a real disk) of pages written once, 70 MB of a 1,000-worker run. */
#define SIMVFS_SQLITE_SOFT_BYTES (32ll << 20)

/* simvfs_destroy unregisters the VFS and frees every disk and file. Every
 * sqlite connection on it must have been closed before. */
void simvfs_destroy(struct simvfs *vfs);

/* simvfs_open opens (creating if needed) database `file` on disk `disk`
 * (the node's name, e.g. "m1"); the disk exists from its first use. Returns
 * 0 and a connection the caller closes with sqlite3_close; CS_EINVAL when
 * a name is empty or holds '/', CS_ELIMIT when one is too long (disk over
 * LIMIT_NAME_BYTES_MAX), or CS_ESTORAGE when sqlite refuses (message in err
 * in every case). */
int simvfs_open(struct simvfs *vfs, const char *disk, const char *file,
		struct sqlite3 **db, char *err, size_t err_size);

/* simvfs_crash_begin marks disk crashed: from now until simvfs_crash_end
 * every write, truncate and sync on its files is silently dropped, so that
 * connections closed during a node's death change nothing on disk (deletes
 * are dropped too, and files created meanwhile never appear on it). */
void simvfs_crash_begin(struct simvfs *vfs, const char *disk);

/* simvfs_crash_end ends the crash; with lose_unsynced, every file of disk
 * goes back to its bytes at its last sync (files never synced vanish). */
void simvfs_crash_end(struct simvfs *vfs, const char *disk, bool lose_unsynced);

/* simvfs_disk_bytes returns the total current size of the files of disk
 * (0 for an unknown disk). */
uint64_t simvfs_disk_bytes(const struct simvfs *vfs, const char *disk);

/* simvfs_disk_hash returns a hash of the names and current contents of
 * every file of disk, in name order (0 for an unknown or empty disk). */
uint64_t simvfs_disk_hash(const struct simvfs *vfs, const char *disk);

/* Disk faults, for `disk NODE fault=...`. While one holds on a disk, its
 * files (temp files never) answer: SIMVFS_FAULT_EIO_WRITE, xWrite fails
 * with SQLITE_IOERR_WRITE and xTruncate with SQLITE_IOERR_TRUNCATE;
 * SIMVFS_FAULT_EIO_SYNC, xSync fails with SQLITE_IOERR_FSYNC (the synced
 * image stays as it was); SIMVFS_FAULT_FULL, an xWrite or xTruncate that
 * would grow a file fails with SQLITE_FULL (ENOSPC), other writes work.
 * Nothing changes on the disk by a failed call. Reads always work. A crash
 * (simvfs_crash_begin) wins: writes are then dropped without an error. */
#define SIMVFS_FAULT_EIO_WRITE (1u << 0)
#define SIMVFS_FAULT_EIO_SYNC  (1u << 1)
#define SIMVFS_FAULT_FULL      (1u << 2)
/* SIMVFS_FAULT_TORN (issue 19): the power fails while pages are written.
 * An xSync while it holds, of a file with pages written since its last
 * sync, tears them: each keeps its new bytes in a drawn run of 512-byte
 * sectors (none, some or all) and its synced bytes elsewhere; that becomes
 * the file's bytes (reads see it, as after a reboot) and its synced image,
 * and the sync fails with SQLITE_IOERR_FSYNC (the daemon exits: restart
 * NODE brings it back on what the platter holds). A crash of the node
 * (simvfs_crash_begin) while it holds tears the unsynced pages the same
 * way (with lose_unsynced) instead of putting them back whole. */
#define SIMVFS_FAULT_TORN (1u << 3)
#define SIMVFS_FAULT_ALL  ((1u << 4) - 1)

/* simvfs_fault sets the faults of disk (created when unknown) to faults,
 * replacing earlier ones, until the now callback reaches until (INT64_MAX:
 * for ever); faults 0 ends them now (`disk NODE ok`). Returns 0,
 * CS_EINVAL (unknown bits) or CS_ENOMEM. */
int simvfs_fault(struct simvfs *vfs, const char *disk, uint32_t faults, int64_t until);

/* simvfs_corrupt flips one bit in each of `pages` pages of disk (silent
 * corruption, issue 19): the pages are drawn from the file named `file`,
 * or, when file is NULL, each from a file drawn among those holding bytes;
 * in an sqlite database, never a page of its freelist (a flip there is never
 * read); the bit within the page is drawn too (the VFS's randomness). The flip is
 * in the bytes reads see and in the synced image (a crash keeps it); a
 * connection's page cache may hide it until it reads the page again.
 * With table (file given), the pages are drawn among those of the b-tree
 * of sqlite table or index `table` of file (as named in sqlite_schema)
 * holding its rows' bytes (leaf and overflow pages) and the bit among those
 * bytes (the records' headers and values), never in the b-tree's structure
 * (page headers, cell pointers, child pointers, rowids, payload lengths)
 * nor in unallocated space: sqlite reads every row, some with altered bytes.
 * Returns 0 and in *flipped the bits flipped (0: no such disk, file or
 * table, or nothing in it), or CS_ENOMEM. */
int simvfs_corrupt(struct simvfs *vfs, const char *disk, const char *file,
		   const char *table, uint32_t pages, uint32_t *flipped);

/* simvfs_faults_until returns a time from which no disk is faulted (until
 * a new fault): the latest end of any fault set so far, 0 when none. */
int64_t simvfs_faults_until(const struct simvfs *vfs);

/* simvfs_faulted returns whether a fault holds on disk now. */
bool simvfs_faulted(const struct simvfs *vfs, const char *disk);

/* simvfs_spares_taken counts the files that took the buffer of a file
 * freed before (issue 18: a journal per transaction allocates nothing). */
uint64_t simvfs_spares_taken(const struct simvfs *vfs);

/* simvfs_healthy_from returns when disk's last fault ended or will end, in
 * the now callback's clock (0: never faulted; INT64_MAX: no end set). */
int64_t simvfs_healthy_from(const struct simvfs *vfs, const char *disk);

#endif
