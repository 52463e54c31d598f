//go:build !nodaemon

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/driver"
)

// defaultSocket is where dockerd looks for plugin sockets; the file name
// ("nftbridge") is the driver name: `docker network create -d nftbridge`.
const defaultSocket = "/run/docker/plugins/nftbridge.sock"

// shutdownGrace bounds how long a stopping daemon lets requests finish.
const shutdownGrace = 10 * time.Second

func runDaemon(a *app, args []string) error {
	f := newFlags("nftbridge daemon", "[--socket PATH]",
		"Serve Docker's remote network-driver plugin API, so that\n"+
			"`docker network create -d nftbridge` networks are nftbridge networks.\n"+
			"At start it restores bridges and the ruleset from the store; it keeps no other state,\n"+
			"so it can be restarted at any time. Requests are logged at debug level (--debug).", a)
	socket := f.String("socket", defaultSocket, "unix socket to serve on; its file name is the driver name")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	eng, err := a.engine()
	if err != nil {
		return err
	}
	a.restoreAtStart(eng.Restore)
	l, err := listenSocket(*socket)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           driver.NewServer(eng, driver.WithObserver(a.logRequest)),
		ReadHeaderTimeout: 30 * time.Second,
	}
	ctx, stop := signal.NotifyContext(a.ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	a.log.Info("serving Docker network driver", "socket", *socket, "state", a.storePath())
	select {
	case err := <-served:
		return fmt.Errorf("serve %s: %w", *socket, err)
	case <-ctx.Done():
	}
	a.log.Info("stopping", "socket", *socket)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Shutdown closes the listener, which removes the socket file.
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("stop serving %s: %w", *socket, err)
	}
	return nil
}

// restoreAtStart rebuilds bridges and the table from the store. A failure
// is logged, not fatal: Docker still needs the driver to remove or repair
// networks, and every later change reconciles a missing table.
func (a *app) restoreAtStart(restore func() (*bridge.RestoreReport, error)) {
	start := time.Now()
	rep, err := restore()
	if err != nil {
		a.log.Error("restore from the store failed; serving anyway", "err", err)
		return
	}
	a.log.Info("restored", "networks", rep.Networks, "endpoints", rep.Endpoints, "ports", rep.Ports,
		"bridges_created", len(rep.BridgesCreated), "veths_reattached", len(rep.VethsReattached),
		"elapsed", time.Since(start).Round(time.Millisecond))
	for _, w := range rep.Warnings {
		a.log.Warn(w)
	}
	for _, m := range rep.Missing {
		a.log.Debug("endpoint has no veth (not joined, or its container is gone)", "endpoint", m)
	}
}

// listenSocket listens on path, readable and writable by root only. Missing
// parent directories are created 0700; an existing directory is left as it
// is (it is Docker's). A stale socket left by a killed daemon is replaced;
// a live one is an error.
func listenSocket(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("socket %s: a file that is not a socket is in the way", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: another process (an nftbridge daemon?) is serving on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	// The umask makes the socket 0600 from the start: no window in which
	// another user could connect. Nothing else runs yet to be affected.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// logRequest logs every plugin request at debug level, and failed ones at
// warning level, with Docker's short network and endpoint IDs.
func (a *app) logRequest(r driver.Request) {
	level := slog.LevelDebug
	attrs := []any{"method", r.Method, "status", r.Status, "elapsed", r.Duration.Round(time.Microsecond)}
	if r.NetworkID != "" {
		attrs = append(attrs, "network", short(r.NetworkID))
	}
	if r.EndpointID != "" {
		attrs = append(attrs, "endpoint", short(r.EndpointID))
	}
	if r.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, "err", r.Err)
	}
	a.log.Log(context.Background(), level, "plugin request", attrs...)
	for _, note := range r.Notes {
		a.log.Info(note, "method", r.Method, "network", short(r.NetworkID), "endpoint", short(r.EndpointID))
	}
}
