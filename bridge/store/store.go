package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket and key names, and the schema version this code reads and writes.
const (
	bucketMeta      = "meta"
	bucketNetworks  = "networks"
	bucketEndpoints = "endpoints"
	keySchema       = "schema"
	schemaVersion   = 1
)

// Store is a handle on the state file. It holds no lock between calls; each
// View or Update locks the file for its own duration. It is safe for use by
// several goroutines.
type Store struct {
	path    string
	timeout time.Duration

	mu     sync.Mutex // serialises this process's calls; the file lock does the rest
	closed bool
}

// DefaultPath is $NFTBRIDGE_STATE_DIR/state.db if that is set, else
// /var/lib/nftbridge/state.db.
func DefaultPath() string {
	if dir := os.Getenv("NFTBRIDGE_STATE_DIR"); dir != "" {
		return filepath.Join(dir, "state.db")
	}
	return "/var/lib/nftbridge/state.db"
}

// Open prepares the state file at path, creating missing directories (0700)
// and the file (0600) and initialising its buckets. timeout bounds how long
// each operation waits for another process's lock; zero waits indefinitely.
// A file that exists already is not opened here: every operation checks
// its schema in its own transaction, and a second open, lock and map of
// the file was a noticeable part of each CLI call.
func Open(path string, timeout time.Duration) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	s := &Store{path: path, timeout: timeout}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		return s, nil
	}
	db, err := s.openDB(false)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := initSchema(db); err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return s, nil
}

// Close marks the store closed; later calls fail. No file lock is held
// between operations, so there is nothing else to release.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// View calls fn with the current state under a shared file lock. fn must not
// keep or modify the state.
func (s *Store) View(fn func(*State) error) error {
	return s.view(nil, fn)
}

// view is View; onNetworks, if not nil, gets the networks before the
// endpoints are read (SnapshotStaged).
func (s *Store) view(onNetworks func(map[string]*Network), fn func(*State) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("view state %s: store is closed", s.path)
	}
	db, err := s.openDB(true)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if _, err := checkSchema(tx); err != nil {
			return fmt.Errorf("read state %s: %w", s.path, err)
		}
		st, _, err := readState(tx, false, onNetworks)
		if err != nil {
			return fmt.Errorf("read state %s: %w", s.path, err)
		}
		return fn(st)
	})
}

// Update runs fn on a copy of the state inside one read-write transaction
// that holds the exclusive file lock. If fn returns nil, the records it added,
// changed or removed are written and committed; if fn returns an error (or
// panics), nothing is written and the error is returned as is. fn may do
// kernel work: other processes wait until it returns. fn must not call the
// Store itself (that would wait for its own lock).
func (s *Store) Update(fn func(*State) error) error {
	return s.writeTx(func(tx *bolt.Tx, created bool) (bool, error) {
		old, raw, err := readState(tx, true, nil)
		if err != nil {
			return false, fmt.Errorf("read state %s: %w", s.path, err)
		}
		next := old.Clone()
		if err := fn(next); err != nil {
			return false, err
		}
		changed, err := writeDiff(tx, raw, old, next)
		if err != nil {
			return false, fmt.Errorf("write state %s: %w", s.path, err)
		}
		// Nothing changed: leave the file untouched.
		return changed || created, nil
	})
}

// writeTx runs fn in one read-write transaction under the exclusive file
// lock and commits it when fn returns true and no error. created tells fn
// that the schema was written in this transaction.
func (s *Store) writeTx(fn func(tx *bolt.Tx, created bool) (commit bool, err error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("update state %s: store is closed", s.path)
	}
	db, err := s.openDB(false)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.Begin(true)
	if err != nil {
		return fmt.Errorf("update state %s: %w", s.path, err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after a successful Commit
	created, err := ensureSchema(tx)
	if err != nil {
		return fmt.Errorf("update state %s: %w", s.path, err)
	}
	commit, err := fn(tx, created)
	if err != nil || !commit {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit state %s: %w", s.path, err)
	}
	return nil
}

// Snapshot opens the store at path, reads the whole state and closes it
// again. The state is the caller's: it was decoded for this call alone, so
// it is not copied (a copy of 10,000 endpoints was a tenth of a restore's
// store read).
func Snapshot(path string, timeout time.Duration) (*State, error) {
	return SnapshotStaged(path, timeout, nil)
}

// SnapshotStaged is Snapshot that hands the networks to networks (if not
// nil) as soon as they are decoded, while the endpoints still are, in the
// same read transaction: a restore starts on the bridges meanwhile. networks gets
// the map of the state SnapshotStaged returns, and must not keep the
// transaction waiting. If the endpoints then cannot be read, the error
// comes after networks was called.
func SnapshotStaged(path string, timeout time.Duration, networks func(map[string]*Network)) (*State, error) {
	var out *State
	err := ViewStaged(path, timeout, networks, func(st *State) error {
		out = st // readState decoded it for this call: nobody else has it
		return nil
	})
	return out, err
}

// ViewStaged is SnapshotStaged that calls fn with the state instead of
// returning it, still inside the read transaction: no other process can
// change the state until fn returns (writers wait for the shared file
// lock, up to their timeout). fn gets a state decoded for this call, and
// must not write to the store (its own write would wait for this lock).
func ViewStaged(path string, timeout time.Duration, networks func(map[string]*Network), fn func(*State) error) error {
	s, err := Open(path, timeout)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.view(networks, fn)
}

// openDB opens the bbolt file, waiting up to s.timeout for its lock.
func (s *Store) openDB(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: s.timeout, ReadOnly: readOnly})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open state %s: another nftbridge process held the lock for more than %s: %w", s.path, s.timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", s.path, err)
	}
	return db, nil
}

// initSchema creates the buckets and records the schema version, writing
// only when something is missing so that opening never rewrites the file.
func initSchema(db *bolt.DB) error {
	var ready bool
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		ready, err = checkSchema(tx)
		return err
	})
	if err != nil || ready {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		_, err := ensureSchema(tx)
		return err
	})
}

// ensureSchema creates whatever buckets or version key are missing, e.g.
// when the file was removed after Open, and reports whether it wrote.
func ensureSchema(tx *bolt.Tx) (bool, error) {
	ready, err := checkSchema(tx)
	if err != nil || ready {
		return false, err
	}
	for _, name := range []string{bucketMeta, bucketNetworks, bucketEndpoints} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return false, fmt.Errorf("create bucket %q: %w", name, err)
		}
	}
	meta := tx.Bucket([]byte(bucketMeta))
	if err := meta.Put([]byte(keySchema), []byte(strconv.Itoa(schemaVersion))); err != nil {
		return false, fmt.Errorf("write schema version: %w", err)
	}
	if err := rebuildPortIndex(tx); err != nil {
		return false, fmt.Errorf("build port index: %w", err)
	}
	return true, nil
}

// checkSchema reports whether all buckets exist with our schema version and
// fails on a version this code does not know.
func checkSchema(tx *bolt.Tx) (bool, error) {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		return false, nil
	}
	raw := meta.Get([]byte(keySchema))
	if raw == nil {
		return false, nil
	}
	version, err := strconv.Atoi(string(raw))
	if err != nil || version != schemaVersion {
		return false, fmt.Errorf("state schema version %q is not supported (this nftbridge reads version %d)", raw, schemaVersion)
	}
	return tx.Bucket([]byte(bucketNetworks)) != nil && tx.Bucket([]byte(bucketEndpoints)) != nil &&
		tx.Bucket([]byte(bucketPorts)) != nil, nil
}

// rawState holds each record's encoding as read, so writeDiff can tell
// which records fn changed. It is the re-encoding of the decoded record, not
// the stored bytes, so a record fn did not touch is never rewritten.
type rawState struct {
	networks, endpoints map[string][]byte
}

// readState decodes every record. A missing bucket reads as empty (a file
// opened read-only before Open initialised it).
func readState(tx *bolt.Tx, keepRaw bool, onNetworks func(map[string]*Network)) (*State, rawState, error) {
	if _, err := checkSchema(tx); err != nil {
		return nil, rawState{}, err
	}
	st := NewState()
	var raw rawState // stays nil unless the caller will diff against it
	if keepRaw {
		raw = rawState{networks: map[string][]byte{}, endpoints: map[string][]byte{}}
	}
	if err := readBucket(tx, bucketNetworks, raw.networks, st.Networks); err != nil {
		return nil, rawState{}, err
	}
	if onNetworks != nil {
		onNetworks(st.Networks)
	}
	if err := readBucket(tx, bucketEndpoints, raw.endpoints, st.Endpoints); err != nil {
		return nil, rawState{}, err
	}
	return st, raw, nil
}

// readBucket decodes every record into out and, if raw is not nil, keeps its
// canonical encoding there for writeDiff (readers need no re-encoding).
func readBucket[T any](tx *bolt.Tx, bucket string, raw map[string][]byte, out map[string]*T) error {
	b := tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	var keys, values [][]byte // valid until the transaction ends
	_ = b.ForEach(func(k, v []byte) error {
		keys, values = append(keys, k), append(values, v)
		return nil
	})
	recs := make([]T, len(keys))
	if err := decodeAll(bucket, keys, values, recs); err != nil {
		return err
	}
	for i, k := range keys {
		out[string(k)] = &recs[i]
		if raw == nil {
			continue
		}
		canonical, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("re-encode %s record %q: %w", bucket, k, err)
		}
		raw[string(k)] = canonical
	}
	return nil
}

// decodeAll decodes values into recs, split over the CPUs when there are
// many (a restore reads 10,000 endpoints). The error is the one of the
// first bad record in key order, as a sequential decode would return.
func decodeAll[T any](bucket string, keys, values [][]byte, recs []T) error {
	const perWorker = 1000
	workers := max(1, min(runtime.GOMAXPROCS(0), 4, len(recs)/perWorker))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(recs)/workers, (w+1)*len(recs)/workers
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				if err := decodeRecord(values[i], &recs[i]); err != nil {
					errs[w] = fmt.Errorf("decode %s record %q: %w", bucket, keys[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// writeDiff puts the records of next whose encoding differs from what is
// stored and deletes the ones that are gone. It reports whether it wrote.
func writeDiff(tx *bolt.Tx, raw rawState, old, next *State) (bool, error) {
	for name, n := range next.Networks {
		if n == nil || n.Name != name {
			return false, fmt.Errorf("network record under key %q must be non-nil and have that Name", name)
		}
	}
	for name, e := range next.Endpoints {
		if e == nil || e.Name != name {
			return false, fmt.Errorf("endpoint record under key %q must be non-nil and have that Name", name)
		}
	}
	changedNets, err := writeBucket(tx, bucketNetworks, raw.networks, next.Networks)
	if err != nil {
		return false, err
	}
	changedEps, err := writeBucket(tx, bucketEndpoints, raw.endpoints, next.Endpoints)
	if err != nil {
		return false, err
	}
	for _, name := range changedEps {
		if err := reindexEndpoint(tx, old.Endpoints[name], next.Endpoints[name]); err != nil {
			return false, err
		}
	}
	return len(changedNets) > 0 || len(changedEps) > 0, nil
}

// writeBucket returns the names of the records it put or deleted.
func writeBucket[T any](tx *bolt.Tx, bucket string, raw map[string][]byte, next map[string]*T) ([]string, error) {
	b := tx.Bucket([]byte(bucket))
	var changed []string
	for name, rec := range next {
		if name == "" {
			return nil, fmt.Errorf("%s record with an empty name", bucket)
		}
		enc, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("encode %s record %q: %w", bucket, name, err)
		}
		if old, ok := raw[name]; ok && bytes.Equal(old, enc) {
			continue
		}
		if err := b.Put([]byte(name), enc); err != nil {
			return nil, fmt.Errorf("put %s record %q: %w", bucket, name, err)
		}
		changed = append(changed, name)
	}
	for name := range raw {
		if _, ok := next[name]; ok {
			continue
		}
		if err := b.Delete([]byte(name)); err != nil {
			return nil, fmt.Errorf("delete %s record %q: %w", bucket, name, err)
		}
		changed = append(changed, name)
	}
	return changed, nil
}
