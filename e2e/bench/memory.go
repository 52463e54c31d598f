package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// memory measures what holding the restore plan's state costs: the
// `nftbridge daemon` process (which restores at start, then serves), and a
// process that holds the state through the library.
func (b *Bench) memory(ctx context.Context, ns string, pt *cpPoint) {
	if err := flushNFT(ns); err != nil {
		b.note("memory: %v", err)
	}
	if m, err := b.daemonMemory(ctx, ns, pt); err != nil {
		b.note("daemon memory not measured: %v", err)
	} else {
		b.res.Memory = append(b.res.Memory, m)
	}
	out, err := b.sb.RunRole(ns, "hold", "-state-dir", pt.stateDir)
	var h HoldResult
	if err == nil {
		err = json.Unmarshal(out, &h)
	}
	if err != nil {
		b.note("library holder memory not measured: %v", err)
	} else {
		b.res.Memory = append(b.res.Memory, MemoryResult{
			What:  "library holder (bench process: engine, store read, compiled ruleset)",
			RSSKB: h.VmRSSKB, PeakKB: h.VmHWMKB,
			Note: fmt.Sprintf("%d networks, %d endpoints, %d set/map elements", h.Networks, h.Endpoints, h.Elements),
		})
	}
	if err := flushNFT(ns); err != nil {
		b.note("memory: %v", err)
	}
}

// daemonMemory starts `nftbridge daemon` on the state, waits until it
// answers Docker's plugin handshake, and reads its RSS and peak RSS.
func (b *Bench) daemonMemory(ctx context.Context, ns string, pt *cpPoint) (MemoryResult, error) {
	sock := filepath.Join(b.tmp, "nftbridge.sock")
	cmd := nsCommand(ns, b.nb(pt.stateDir, "daemon", "--socket", sock)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return MemoryResult{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return MemoryResult{}, fmt.Errorf("daemon exited (%v): %s", err, lastLines(stderr.String(), 4))
		case <-ctx.Done():
			return MemoryResult{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := os.Stat(sock); err == nil && pluginHandshake(client) == nil {
			break
		}
		if time.Now().After(deadline) {
			return MemoryResult{}, fmt.Errorf("daemon not answering after 30s: %s", lastLines(stderr.String(), 4))
		}
	}
	time.Sleep(500 * time.Millisecond)
	rss, hwm, err := procMemory(cmd.Process.Pid)
	if err != nil {
		return MemoryResult{}, err
	}
	return MemoryResult{What: "nftbridge daemon, serving after its start-up restore", RSSKB: rss, PeakKB: hwm,
		Note: "peak includes the start-up restore"}, nil
}

// pluginHandshake asks what Docker asks a plugin first.
func pluginHandshake(c *http.Client) error {
	for _, path := range []string{"/Plugin.Activate", "/NetworkDriver.GetCapabilities"} {
		resp, err := c.Post("http://plugin"+path, "application/vnd.docker.plugins.v1+json", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
	}
	return nil
}
