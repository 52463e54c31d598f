package store

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "dir", "state.db")
	s, err := Open(path, 5*time.Second)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func sampleNetwork() *Network {
	return &Network{
		Name: "web", ID: "0123abcd", Bridge: "nb-web",
		Subnet:   netip.MustParsePrefix("172.18.0.0/16"),
		Gateway:  netip.MustParseAddr("172.18.0.1"),
		Internal: false, ICC: true, Masquerade: true,
		HostIP:  netip.MustParseAddr("127.0.0.1"),
		MTU:     1450,
		Options: map[string]string{"com.docker.network.bridge.name": "nb-web"},
		Created: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
	}
}

func sampleEndpoint() *Endpoint {
	return &Endpoint{
		Name: "web-1", ID: "ep1", Network: "web",
		Addr: netip.MustParseAddr("172.18.0.2"), MAC: "02:42:ac:12:00:02",
		NetNS: "/run/netns/web-1", HostVeth: "nb0123abcd", PeerName: "nbp0123abcd",
		Ports: []Port{
			{Proto: "tcp", HostPort: 8080, ContainerPort: 80},
			{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 53, ContainerPort: 53},
		},
		Created: time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC),
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	_, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("state file mode %v, want no group/other access", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("state dir mode %v, want 0700", perm)
	}
}

func TestRoundTrip(t *testing.T) {
	s, path := openTemp(t)
	err := s.Update(func(st *State) error {
		st.Networks["web"] = sampleNetwork()
		st.Endpoints["web-1"] = sampleEndpoint()
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	s.Close()

	// A fresh handle, as another process would open it.
	s2, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	err = s2.View(func(st *State) error {
		if got, want := st.Networks["web"], sampleNetwork(); !reflect.DeepEqual(got, want) {
			t.Errorf("network round trip:\n got %+v\nwant %+v", got, want)
		}
		if got, want := st.Endpoints["web-1"], sampleEndpoint(); !reflect.DeepEqual(got, want) {
			t.Errorf("endpoint round trip:\n got %+v\nwant %+v", got, want)
		}
		if eps := st.EndpointsOn("web"); len(eps) != 1 || eps[0].Name != "web-1" {
			t.Errorf("EndpointsOn(web) = %v", eps)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Delete one record: it must be gone, the other must stay.
	if err := s2.Update(func(st *State) error { delete(st.Endpoints, "web-1"); return nil }); err != nil {
		t.Fatal(err)
	}
	s2.View(func(st *State) error {
		if len(st.Endpoints) != 0 || st.Networks["web"] == nil {
			t.Errorf("after delete: %d endpoints, network present %v", len(st.Endpoints), st.Networks["web"] != nil)
		}
		return nil
	})
}

func TestRollbackLeavesFileIdentical(t *testing.T) {
	s, path := openTemp(t)
	if err := s.Update(func(st *State) error { st.Networks["web"] = sampleNetwork(); return nil }); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("kernel said no")
	err = s.Update(func(st *State) error {
		st.Networks["other"] = &Network{Name: "other"}
		st.Networks["web"].MTU = 9000
		delete(st.Endpoints, "x")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want %v", err, boom)
	}
	// A successful Update that changes nothing must not write either.
	if err := s.Update(func(*State) error { return nil }); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("state file changed after a rolled-back Update")
	}
	s.View(func(st *State) error {
		if len(st.Networks) != 1 || st.Networks["web"].MTU != 1450 {
			t.Errorf("state after rollback: %+v", st.Networks)
		}
		return nil
	})
}

func TestUpdateRejectsMismatchedKey(t *testing.T) {
	s, _ := openTemp(t)
	err := s.Update(func(st *State) error { st.Networks["a"] = &Network{Name: "b"}; return nil })
	if err == nil {
		t.Fatal("Update with key a for network b succeeded")
	}
}

func TestCloneIsDeep(t *testing.T) {
	st := NewState()
	st.Networks["web"] = sampleNetwork()
	st.Endpoints["web-1"] = sampleEndpoint()
	c := st.Clone()
	c.Networks["web"].Options["k"] = "v"
	c.Networks["web"].MTU = 1
	c.Endpoints["web-1"].Ports[0].HostPort = 1
	delete(c.Endpoints, "web-1")
	if !reflect.DeepEqual(st.Networks["web"], sampleNetwork()) || !reflect.DeepEqual(st.Endpoints["web-1"], sampleEndpoint()) {
		t.Fatal("changing the clone changed the original")
	}
}

func TestSchemaVersionChecked(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketMeta)).Put([]byte(keySchema), []byte("99")) })
	db.Close()
	// Open does not read an existing file; every operation checks.
	s, err = Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := `schema version "99" is not supported`
	if err := s.View(func(*State) error { return nil }); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("View of schema version 99 = %v, want %q", err, want)
	}
	if err := s.Update(func(*State) error { return nil }); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Update of schema version 99 = %v, want %q", err, want)
	}
	if _, err := Snapshot(path, time.Second); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Snapshot of schema version 99 = %v, want %q", err, want)
	}
}

func TestLockTimeout(t *testing.T) {
	s, path := openTemp(t)
	holder, err := bolt.Open(path, 0o600, nil) // holds the exclusive lock
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	s.timeout = 200 * time.Millisecond
	err = s.Update(func(*State) error { return nil })
	if !errors.Is(err, bolt.ErrTimeout) {
		t.Fatalf("Update while locked = %v, want a timeout", err)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("NFTBRIDGE_STATE_DIR", "/tmp/nb")
	if got := DefaultPath(); got != "/tmp/nb/state.db" {
		t.Errorf("DefaultPath = %q", got)
	}
	t.Setenv("NFTBRIDGE_STATE_DIR", "")
	if got := DefaultPath(); got != "/var/lib/nftbridge/state.db" {
		t.Errorf("DefaultPath = %q", got)
	}
}

const (
	childEnv     = "NFTBRIDGE_STORE_TEST_CHILD"
	childPathEnv = "NFTBRIDGE_STORE_TEST_PATH"
	children     = 8
	perChild     = 50
)

// TestConcurrentProcesses re-executes this test binary as 8 processes that
// each Open → Update → Close 50 times, adding a distinct endpoint and
// incrementing a shared counter. Any lost update shows as a missing endpoint
// or a short counter.
func TestConcurrentProcesses(t *testing.T) {
	if id := os.Getenv(childEnv); id != "" {
		runChild(t, id, os.Getenv(childPathEnv))
		return
	}
	s, path := openTemp(t)
	s.Update(func(st *State) error { st.Networks["counter"] = &Network{Name: "counter"}; return nil })
	s.Close()

	cmds := make([]*exec.Cmd, children)
	outs := make([]bytes.Buffer, children)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(i), childPathEnv+"="+path)
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, outs[i].String())
		}
	}

	s2, err := Open(path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s2.View(func(st *State) error {
		if got := len(st.Endpoints); got != children*perChild {
			t.Errorf("%d endpoints, want %d", got, children*perChild)
		}
		for c := 0; c < children; c++ {
			for i := 0; i < perChild; i++ {
				if name := fmt.Sprintf("c%d-%d", c, i); st.Endpoints[name] == nil {
					t.Errorf("endpoint %s lost", name)
				}
			}
		}
		if got := st.Networks["counter"].MTU; got != children*perChild {
			t.Errorf("counter = %d, want %d", got, children*perChild)
		}
		return nil
	})
}

func runChild(t *testing.T, id, path string) {
	for i := 0; i < perChild; i++ {
		s, err := Open(path, time.Minute)
		if err != nil {
			t.Fatalf("child %s: Open: %v", id, err)
		}
		name := fmt.Sprintf("c%s-%d", id, i)
		err = s.Update(func(st *State) error {
			st.Endpoints[name] = &Endpoint{Name: name, Network: "counter"}
			st.Networks["counter"].MTU++
			return nil
		})
		if err != nil {
			t.Fatalf("child %s: Update: %v", id, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("child %s: Close: %v", id, err)
		}
	}
}

// SnapshotStaged hands over the networks before it reads the endpoints, as
// the map it then returns; a bad endpoint record fails it after that.
func TestSnapshotStaged(t *testing.T) {
	s, path := openTemp(t)
	if err := s.Update(func(st *State) error {
		st.Networks["web"] = sampleNetwork()
		st.Endpoints["web-1"] = sampleEndpoint()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var early map[string]*Network
	st, err := SnapshotStaged(path, time.Second, func(networks map[string]*Network) {
		if early != nil {
			t.Error("networks handed over twice")
		}
		early = networks
	})
	if err != nil {
		t.Fatalf("SnapshotStaged: %v", err)
	}
	if !reflect.DeepEqual(early, map[string]*Network{"web": sampleNetwork()}) {
		t.Errorf("networks handed over: %+v", early)
	}
	if len(st.Networks) != 1 || st.Networks["web"] != early["web"] {
		t.Errorf("state's networks are not the ones handed over: %+v", st.Networks)
	}
	if got, want := st.Endpoints["web-1"], sampleEndpoint(); !reflect.DeepEqual(got, want) {
		t.Errorf("endpoint: got %+v want %+v", got, want)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketEndpoints)).Put([]byte("web-2"), []byte(`{"Name":"web-2","Addr":"not an address"}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	called := false
	st, err = SnapshotStaged(path, time.Second, func(map[string]*Network) { called = true })
	if err == nil || !strings.Contains(err.Error(), "web-2") || st != nil {
		t.Errorf("SnapshotStaged with a bad endpoint record = %v, %v; want an error naming it", st, err)
	}
	if !called {
		t.Error("the networks were not handed over before the bad endpoint record")
	}
}
