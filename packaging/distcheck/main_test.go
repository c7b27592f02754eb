package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// stand-in is a module of assertd's path whose command answers
// `version -o json` with the stamped Version, as assertd does; it imports
// nothing, so cross-compiling it is cheap.
var standIn = map[string]string{
	"go.mod":     "module github.com/assertd/assertd\n\ngo 1.26\n",
	"version.go": "package assertd\n\nvar Version = \"\"\n",
	"cmd/assertd/main.go": `package main

import (
	"os"

	"github.com/assertd/assertd"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "version" {
		os.Stdout.WriteString("{\"version\": \"" + assertd.Version + "\"}\n")
	}
}
`,
}

// build compiles the stand-in the way make dist builds assertd, with flags
// replacing make dist's.
func build(t *testing.T, dir, arch string, flags ...string) string {
	t.Helper()
	src := t.TempDir()
	for name, text := range standIn {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "assertd-linux-"+arch)
	if flags == nil {
		flags = []string{"-trimpath", "-ldflags", "-s -w -X github.com/assertd/assertd.Version=v9.9.9"}
	}
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, "./cmd/assertd")...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s: %v\n%s", arch, err, b)
	}
	return out
}

func writeSums(t *testing.T, dir string, names ...string) {
	t.Helper()
	var b strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		b.WriteString(hex.EncodeToString(sum[:]) + "  " + n + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDirAcceptsWhatDistBuilds(t *testing.T) {
	dir := t.TempDir()
	build(t, dir, "amd64")
	build(t, dir, "arm64")
	writeSums(t, dir, "assertd-linux-amd64", "assertd-linux-arm64")
	got, err := checkDir(dir, "v9.9.9", []string{"amd64", "arm64"})
	if err != nil || len(got) != 2 {
		t.Fatalf("checkDir = %v, %v", got, err)
	}
	// Another version than the stamped one is refused.
	if _, err := checkDir(dir, "v1.0.0", []string{"amd64", "arm64"}); err == nil || !strings.Contains(err.Error(), "not stamped with version v1.0.0") {
		t.Fatalf("a wrong version passed: %v", err)
	}
}

func TestCheckDirRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"an architecture missing", func(t *testing.T, dir string) {
			build(t, dir, "amd64")
			writeSums(t, dir, "assertd-linux-amd64")
		}, "assertd-linux-arm64: not in SHA256SUMS"},
		{"a changed binary", func(t *testing.T, dir string) {
			p := build(t, dir, "amd64")
			writeSums(t, dir, "assertd-linux-amd64")
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteString("x")
			f.Close()
		}, "SHA256SUMS says"},
		{"a binary for another machine than its name", func(t *testing.T, dir string) {
			p := build(t, dir, "amd64")
			if err := os.Rename(p, filepath.Join(dir, "assertd-linux-arm64")); err != nil {
				t.Fatal(err)
			}
			writeSums(t, dir, "assertd-linux-arm64")
		}, "ELF machine EM_X86_64, want EM_AARCH64"},
		{"a dynamically linked binary", func(t *testing.T, dir string) {
			b, err := os.ReadFile("/bin/true")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "assertd-linux-amd64"), b, 0o755); err != nil {
				t.Fatal(err)
			}
			writeSums(t, dir, "assertd-linux-amd64")
		}, "dynamically linked"},
		{"a binary built without -trimpath", func(t *testing.T, dir string) {
			build(t, dir, "amd64", "-ldflags", "-X github.com/assertd/assertd.Version=v9.9.9")
			writeSums(t, dir, "assertd-linux-amd64")
		}, `-trimpath=""`},
		{"a malformed SHA256SUMS", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte("abc assertd-linux-amd64\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "SHA256SUMS:1: want"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			arches := []string{"amd64"}
			if strings.Contains(tc.want, "arm64") {
				arches = append(arches, "arm64")
			}
			_, err := checkDir(dir, "", arches)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
