package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	unitPath = "systemd/assertd.service"
	// unitBinary is where the unit expects the binary; systemd-analyze
	// verify needs it to exist, so the tests point a copy elsewhere.
	unitBinary = "/usr/local/bin/assertd"
)

// unitCopy writes the unit into a temporary directory with ExecStart on bin
// (default an executable that exists: this test's binary), and edit
// applied.
func unitCopy(t *testing.T, bin string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if bin != "" {
		self = bin
	}
	text := string(b)
	if !strings.Contains(text, "ExecStart="+unitBinary+" ") {
		t.Fatalf("%s: ExecStart does not run %s", unitPath, unitBinary)
	}
	text = strings.ReplaceAll(text, unitBinary, self)
	if edit != nil {
		text = edit(text)
	}
	p := filepath.Join(t.TempDir(), "assertd.service")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// systemdAnalyze runs systemd-analyze; any output is a finding (verify
// exits 0 on unknown keys and only warns).
func systemdAnalyze(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command("systemd-analyze", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestSystemdUnitVerifies(t *testing.T) {
	out, err := systemdAnalyze(t, "verify", unitCopy(t, "", nil))
	if err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check sees a misspelt directive and a missing binary.
	out, err = systemdAnalyze(t, "verify", unitCopy(t, "", func(s string) string {
		return strings.Replace(s, "ProtectSystem=strict", "ProtectSystm=strict", 1)
	}))
	if !strings.Contains(out, "Unknown key 'ProtectSystm'") {
		t.Errorf("a misspelt directive passed verify (%v):\n%s", err, out)
	}
	out, err = systemdAnalyze(t, "verify", unitCopy(t, "/nonexistent/assertd", nil))
	if err == nil || !strings.Contains(out, "/nonexistent/assertd") {
		t.Errorf("a missing binary passed verify (%v):\n%s", err, out)
	}
}

// The unit's exposure as systemd-analyze security rates it offline stays at
// 2.0 ("OK") or below.
func TestSystemdUnitIsHardened(t *testing.T) {
	p := unitCopy(t, "", nil)
	out, err := systemdAnalyze(t, "security", "--offline=yes", "--threshold=20", p)
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
	}
	if !strings.Contains(out, "Overall exposure level for assertd.service") {
		t.Fatalf("no exposure level:\n%s", out)
	}
	// Without its hardening the same unit fails the threshold.
	bare := unitCopy(t, "", func(s string) string {
		head, _, _ := strings.Cut(s, "DynamicUser=yes")
		return head + "\n[Install]\nWantedBy=multi-user.target\n"
	})
	if out, err := systemdAnalyze(t, "security", "--offline=yes", "--threshold=20", bare); err == nil {
		t.Fatalf("an unhardened unit passed the threshold:\n%s", out)
	}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=assertd", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"--config.file=/etc/assertd/assertd.yaml", "--storage.path=/var/lib/assertd", "EnvironmentFile=-/etc/default/assertd",
		"ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(unit, want) {
			t.Errorf("%s lacks %s", unitPath, want)
		}
	}
}
