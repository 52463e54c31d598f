//go:build nodaemon

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// This build (`-tags nodaemon`, what `make build` installs as nftbridge)
// leaves the daemon out. The plugin API server links net/http and TLS,
// whose initialisation was about a quarter of every CLI call's start-up
// (1.2 ms of 5 measured here), and a CLI call is mostly start-up.
// `nftbridge daemon` runs nftbridged, the full build, from the same
// directory, with the same arguments.

// daemonBinary is the full build's name.
const daemonBinary = "nftbridged"

func runDaemon(a *app, args []string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemon: find %s: %w", daemonBinary, err)
	}
	path := filepath.Join(filepath.Dir(self), daemonBinary)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("daemon: this nftbridge is built without the daemon, which is %s: %w", path, err)
	}
	argv := append([]string{path}, os.Args[1:]...)
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("daemon: run %s: %w", path, err)
	}
	return nil
}
