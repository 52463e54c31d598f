package e2e

// This file is named to sort first: Go runs a package's tests in the order of
// its files, and the VM's verdict on the kernel should head the log.

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// legacyModules are the iptables (x_tables) modules the nft-only VM must not
// be able to load: if any loads, the suite would not prove that nftbridge
// works without iptables.
var legacyModules = []string{"ip_tables", "x_tables", "nft_compat", "iptable_nat"}

// TestNftOnlyKernel proves, inside the VM only, that the kernel the suite
// runs on cannot do iptables: every legacy module fails to load and the
// ip_tables interface is absent.
func TestNftOnlyKernel(t *testing.T) {
	if os.Getenv("NFTBRIDGE_VM") != "1" {
		t.Skip("runs only inside the nft-only VM (NFTBRIDGE_VM=1): it loads kernel modules")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the VM runs the suite as root; running as uid", os.Geteuid())
	}
	if modprobe, err := exec.LookPath("modprobe"); err == nil {
		for _, mod := range legacyModules {
			res := run(modprobe, mod)
			if res.code == 0 {
				t.Errorf("modprobe %s succeeded; the VM kernel must not load it", mod)
			} else {
				t.Logf("modprobe %s: exit %d: %s", mod, res.code, strings.TrimSpace(res.stderr))
			}
		}
	} else {
		t.Logf("no modprobe in the guest (%v): checking the module tree instead", err)
		checkModulesAbsentFromTree(t)
	}
	checkModulesNotLoaded(t)
	if _, err := os.Stat("/proc/net/ip_tables_names"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/proc/net/ip_tables_names: %v; want it absent (no ip_tables in this kernel)", err)
	}
}

// checkModulesNotLoaded reads /proc/modules and /sys/module: neither may
// know a legacy module (built-in modules show up only in /sys/module).
func checkModulesNotLoaded(t *testing.T) {
	t.Helper()
	loaded, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatalf("read /proc/modules: %v", err)
	}
	for _, line := range strings.Split(string(loaded), "\n") {
		if name, _, _ := strings.Cut(line, " "); isLegacy(name) {
			t.Errorf("/proc/modules lists %s: %s", name, line)
		}
	}
	for _, mod := range legacyModules {
		if _, err := os.Stat(filepath.Join("/sys/module", mod)); err == nil {
			t.Errorf("/sys/module/%s exists: %s is loaded or built in", mod, mod)
		}
	}
}

// checkModulesAbsentFromTree looks for the legacy modules' files under
// /lib/modules/$(uname -r) and in modules.builtin.
func checkModulesAbsentFromTree(t *testing.T) {
	t.Helper()
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatalf("kernel release: %v", err)
	}
	dir := filepath.Join("/lib/modules", strings.TrimSpace(string(release)))
	if builtin, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, line := range strings.Split(string(builtin), "\n") {
			if base := moduleName(line); isLegacy(base) {
				t.Errorf("%s/modules.builtin lists %s", dir, line)
			}
		}
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // an unreadable or missing tree holds no modules
		}
		if !d.IsDir() && isLegacy(moduleName(d.Name())) {
			t.Errorf("module file %s is present", path)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk %s: %v", dir, err)
	}
}

// moduleName turns "kernel/net/ipv4/netfilter/ip_tables.ko.xz" into "ip_tables".
// Anything that is not a module file gives "".
func moduleName(path string) string {
	name, _, isModule := strings.Cut(filepath.Base(path), ".ko")
	if !isModule {
		return ""
	}
	return strings.ReplaceAll(name, "-", "_")
}

func isLegacy(name string) bool { return slices.Contains(legacyModules, name) }
