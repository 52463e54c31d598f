package bridge

import (
	"strings"
	"testing"
	"time"

	"github.com/nftbridge/nftbridge/nft"
	"github.com/nftbridge/nftbridge/ports"
)

// blockingFirewall holds Reconcile until release is closed.
type blockingFirewall struct {
	*fakeFirewall
	entered, release chan struct{}
}

func (f *blockingFirewall) Reconcile(rs *nft.Ruleset) error {
	close(f.entered)
	<-f.release
	return f.fakeFirewall.Reconcile(rs)
}

// TestRestoreHoldsTheState: no other process changes the state while a
// restore brings the kernel to its snapshot of it. A port unpublished in
// between would otherwise come back with the snapshot: published in the
// kernel, gone from the store.
func TestRestoreHoldsTheState(t *testing.T) {
	h := newHarness(t)
	h.setup(t)
	fw := &blockingFirewall{fakeFirewall: &fakeFirewall{}, entered: make(chan struct{}), release: make(chan struct{})}
	restorer, err := New(Config{StorePath: h.path, Firewall: fw, Links: h.links, Host: fakeHost{}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(Config{StorePath: h.path, Firewall: fw.fakeFirewall, Links: h.links, Host: fakeHost{},
		LockWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	restored := make(chan error, 1)
	go func() {
		_, err := restorer.Restore()
		restored <- err
	}()
	<-fw.entered
	spec := []ports.Spec{mustSpec(t, "8080:80")}
	_, err = other.Unpublish("c1", spec)
	t.Logf("Unpublish during the restore: %v", err)
	if err == nil || !strings.Contains(err.Error(), "held the lock") {
		t.Errorf("Unpublish during a restore = %v, want it to wait for the restore's lock and time out", err)
	}
	close(fw.release)
	if err := <-restored; err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !strings.Contains(fw.programmed, "tcp . 8080") {
		t.Fatalf("restore did not program the published port:\n%s", fw.programmed)
	}
	if _, err := other.Unpublish("c1", spec); err != nil {
		t.Fatalf("Unpublish after the restore: %v", err)
	}
	if strings.Contains(fw.programmed, "tcp . 8080") {
		t.Errorf("the unpublished port is still programmed:\n%s", fw.programmed)
	}
}
