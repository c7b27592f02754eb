// Package main is distcheck, which checks the release binaries that make dist writes: every
// file SHA256SUMS lists has that checksum, and each is a statically linked
// ELF executable for the machine its name says (assertd-linux-amd64 is
// x86-64, assertd-linux-arm64 is AArch64), built with CGO_ENABLED=0,
// -trimpath and the version stamp (the binary for this machine's
// architecture is run: its `version -o json` must say it).
//
//	go run ./packaging/distcheck -version v1.2.3 dist
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// machines maps a GOARCH to the ELF machine its binaries are for.
var machines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}

func main() {
	version := flag.String("version", "", "the version the binaries must be stamped with (make's VERSION)")
	want := flag.String("arches", "amd64,arm64", "the architectures dist must hold, comma-separated")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: distcheck [-version V] [-arches amd64,arm64] DIR")
		os.Exit(2)
	}
	checked, err := checkDir(flag.Arg(0), *version, strings.Split(*want, ","))
	for _, c := range checked {
		fmt.Println(c)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "distcheck: %v\n", err)
		os.Exit(1)
	}
}

// checkDir checks every binary of dir's SHA256SUMS and that one for each of
// arches is there. It returns a line for each binary that passed.
func checkDir(dir, version string, arches []string) ([]string, error) {
	sums, err := readSums(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return nil, err
	}
	var out []string
	var errs []error
	for _, arch := range arches {
		name := "assertd-linux-" + arch
		if _, ok := sums[name]; !ok {
			errs = append(errs, fmt.Errorf("%s: not in SHA256SUMS", name))
		}
	}
	for name, sum := range sums {
		if err := checkBinary(filepath.Join(dir, name), sum, version); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, fmt.Sprintf("ok %s %s", name, sum))
	}
	return out, errors.Join(errs...)
}

// readSums reads a sha256sum file: "HEX  NAME" lines.
func readSums(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != sha256.Size*2 || name == "" || strings.ContainsRune(name, '/') {
			return nil, fmt.Errorf("%s:%d: want \"SHA256  NAME\" (sha256sum's format), got %q", path, n, sc.Text())
		}
		sums[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("%s: no binaries listed", path)
	}
	return sums, nil
}

// checkBinary checks one binary: its checksum, its ELF machine against the
// architecture its name ends with, static linking, and how it was built.
func checkBinary(path, sum, version string) error {
	name := filepath.Base(path)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
		return fmt.Errorf("%s: sha256 %x, SHA256SUMS says %s", name, got, sum)
	}
	arch := name[strings.LastIndexByte(name, '-')+1:]
	want, ok := machines[arch]
	if !ok {
		return fmt.Errorf("%s: unknown architecture %q (known: amd64, arm64)", name, arch)
	}
	if err := checkELF(bytes.NewReader(b), want); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	bi, err := buildinfo.Read(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: no Go build information: %w", name, err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"GOOS": "linux", "GOARCH": arch, "CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != v {
			return fmt.Errorf("%s: built with %s=%q, want %q", name, k, settings[k], v)
		}
	}
	// -trimpath keeps -ldflags out of the build information: the stamp is
	// looked for in the binary, and asked for where it runs here.
	if version == "" {
		return nil
	}
	if !bytes.Contains(b, []byte(version)) {
		return fmt.Errorf("%s: not stamped with version %s", name, version)
	}
	if arch == runtime.GOARCH && runtime.GOOS == "linux" {
		out, err := exec.Command(path, "version", "-o", "json").Output()
		if err != nil {
			return fmt.Errorf("%s version: %w", name, err)
		}
		var got struct{ Version string }
		if err := json.Unmarshal(out, &got); err != nil || got.Version != version {
			return fmt.Errorf("%s version says %q (%v), want %s", name, out, err, version)
		}
	}
	return nil
}

// checkELF checks that r is a statically linked ELF executable for machine
// m: no program interpreter and no shared libraries needed.
func checkELF(r io.ReaderAt, m elf.Machine) error {
	f, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("not an ELF file: %w", err)
	}
	defer f.Close()
	if f.Machine != m {
		return fmt.Errorf("ELF machine %s, want %s", f.Machine, m)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (it has a program interpreter)")
		}
	}
	if f.Type != elf.ET_EXEC {
		return fmt.Errorf("ELF type %s, want %s (a static executable)", f.Type, elf.ET_EXEC)
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("reading its dynamic section: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v", libs)
	}
	return nil
}
