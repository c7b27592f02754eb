package store_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The packages that decide and act must not link a database driver: only
// the driver packages and what wires the stack (app, cmd) do.
func TestNoDriverBelowTheDrivers(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	pkgs := []string{"./config", "./remediations", "./engine", "./notifiers", "./asserts", "./web", "./sources/...", "./store"}
	cmd := exec.Command(goBin, append([]string{"list", "-deps"}, pkgs...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !slices.Contains(deps, "github.com/assertd/assertd/store") {
		t.Fatalf("go list -deps listed %d packages, without the store: %q", len(deps), out)
	}
	for _, dep := range deps {
		for _, driver := range []string{"modernc.org/sqlite", "github.com/jackc/pgx"} {
			if dep == driver || strings.HasPrefix(dep, driver+"/") {
				t.Errorf("%s links %s", strings.Join(pkgs, " "), dep)
			}
		}
	}
	// The check can fail: the SQLite driver package does link it.
	cmd = exec.Command(goBin, "list", "-deps", "./store/sqlite")
	cmd.Dir = ".."
	if out, err = cmd.Output(); err != nil || !slices.Contains(strings.Fields(string(out)), "modernc.org/sqlite") {
		t.Errorf("go list -deps ./store/sqlite does not list modernc.org/sqlite: %v", err)
	}
}
