package packaging

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// No container engine runs where the tests run: the Dockerfile is parsed
// (continuation lines, comments, instructions) and checked for what the
// image must have, and its COPY of the binary against what make dist
// writes.

// instruction is one Dockerfile instruction.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// stage is one FROM … and the instructions up to the next.
type stage struct {
	name, base string
	ins        []instruction
}

func parseDockerfile(path string) ([]stage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				return nil, fmt.Errorf("%s:%d: %s before FROM", path, in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("%s:%d: the last instruction ends with a continuation", path, start)
	}
	return stages, sc.Err()
}

// copies are a stage's COPY instructions: --from, sources and destination.
type copyIns struct {
	from, chown string
	srcs        []string
	dst         string
}

func (s stage) copies() []copyIns {
	var out []copyIns
	for _, in := range s.ins {
		if in.cmd != "COPY" {
			continue
		}
		var c copyIns
		var rest []string
		for _, f := range strings.Fields(in.args) {
			switch {
			case strings.HasPrefix(f, "--from="):
				c.from = strings.TrimPrefix(f, "--from=")
			case strings.HasPrefix(f, "--chown="):
				c.chown = strings.TrimPrefix(f, "--chown=")
			default:
				rest = append(rest, f)
			}
		}
		c.srcs, c.dst = rest[:len(rest)-1], rest[len(rest)-1]
		out = append(out, c)
	}
	return out
}

func (s stage) last(cmd string) (instruction, bool) {
	for i := len(s.ins) - 1; i >= 0; i-- {
		if s.ins[i].cmd == cmd {
			return s.ins[i], true
		}
	}
	return instruction{}, false
}

// distBinaries are the files make dist writes, read from the Makefile:
// DIST_PLATFORMS and the dist recipe's -o.
func distBinaries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	platforms := regexp.MustCompile(`(?m)^DIST_PLATFORMS := (.+)$`).FindStringSubmatch(mk)
	recipe, _, _ := strings.Cut(mk[strings.Index(mk, "\ndist:")+1:], "\n\n")
	out := regexp.MustCompile(`-o (dist/\S+)`).FindStringSubmatch(recipe)
	if platforms == nil || out == nil {
		t.Fatal("the Makefile has no DIST_PLATFORMS or no -o dist/… in its dist recipe")
	}
	var bins []string
	for _, p := range strings.Fields(platforms[1]) {
		goos, arch, _ := strings.Cut(p, "/")
		bins = append(bins, strings.NewReplacer("$$os", goos, "$$arch", arch).Replace(out[1]))
	}
	return bins
}

// checkDockerfile lists what is wrong with the Dockerfile at path, given
// the binaries make dist writes.
func checkDockerfile(path string, bins []string) []string {
	var bad []string
	errorf := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	stages, err := parseDockerfile(path)
	if err != nil {
		return []string{err.Error()}
	}
	if len(stages) < 2 {
		return []string{fmt.Sprintf("%d stages, want a multi-stage build", len(stages))}
	}
	final := stages[len(stages)-1]
	if final.base != "scratch" && !strings.HasPrefix(final.base, "gcr.io/distroless/static") {
		errorf("the image is based on %s, want scratch or distroless static", final.base)
	}
	byName := map[string]stage{}
	for _, s := range stages[:len(stages)-1] {
		byName[s.name] = s
	}

	// A non-root user, numeric so that Kubernetes' runAsNonRoot can check it.
	user, ok := final.last("USER")
	if !ok {
		return append(bad, "no USER: the image would run as root")
	}
	uid, _, _ := strings.Cut(user.args, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		errorf("USER %s: want a numeric non-root uid", user.args)
	}

	// The binary is the one make dist builds, for the platform being built.
	var binCopy *copyIns
	for _, c := range final.copies() {
		if c.from == "" {
			binCopy = &c
		}
	}
	if binCopy == nil || len(binCopy.srcs) != 1 {
		return append(bad, "the final stage copies no binary from the build context")
	}
	if !slices.ContainsFunc(final.ins, func(in instruction) bool { return in.cmd == "ARG" && in.args == "TARGETARCH" }) {
		errorf("the final stage does not declare ARG TARGETARCH")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		src := strings.ReplaceAll(binCopy.srcs[0], "${TARGETARCH}", arch)
		if !slices.Contains(bins, src) {
			errorf("for %s the image copies %s; make dist writes %v", arch, src, bins)
		}
	}

	// CA certificates and time zones come from a stage that installs them;
	// the passwd entry names the USER's uid.
	need := map[string]string{"/etc/ssl/certs/ca-certificates.crt": "ca-certificates", "/usr/share/zoneinfo": "tzdata"}
	for _, c := range final.copies() {
		for _, src := range c.srcs {
			pkg, ok := need[src]
			if !ok {
				continue
			}
			from, ok := byName[c.from]
			if !ok || !slices.ContainsFunc(from.ins, func(in instruction) bool {
				return in.cmd == "RUN" && regexp.MustCompile(`apt-get install .*\b`+pkg+`\b`).MatchString(in.args)
			}) {
				errorf("%s is copied from stage %q, which does not install %s", src, c.from, pkg)
			}
			delete(need, src)
		}
	}
	for path := range need {
		errorf("the image has no %s", path)
	}
	if !slices.ContainsFunc(stages, func(s stage) bool {
		return slices.ContainsFunc(s.ins, func(in instruction) bool {
			return in.cmd == "RUN" && strings.Contains(in.args, "assertd:x:"+uid+":")
		})
	}) {
		errorf("no passwd entry for uid %s", uid)
	}

	// Exec form, with the Prometheus-style flags.
	var entry, cmd []string
	for name, dst := range map[string]*[]string{"ENTRYPOINT": &entry, "CMD": &cmd} {
		in, ok := final.last(name)
		if !ok {
			errorf("no %s", name)
			continue
		}
		if err := json.Unmarshal([]byte(in.args), dst); err != nil {
			errorf("Dockerfile:%d: %s is not in exec form (a JSON array): %v", in.line, name, err)
		}
	}
	if !slices.Equal(entry, []string{"/usr/bin/assertd"}) || binCopy.dst != "/usr/bin/assertd" {
		errorf("ENTRYPOINT %v runs something else than the copied binary %s", entry, binCopy.dst)
	}
	for _, want := range []string{"run", "--config.file=/etc/assertd/assertd.yaml", "--storage.path=/var/lib/assertd"} {
		if !slices.Contains(cmd, want) {
			errorf("CMD %v lacks %s", cmd, want)
		}
	}
	return bad
}

func TestDockerfile(t *testing.T) {
	bins := distBinaries(t)
	if len(bins) != 2 {
		t.Fatalf("make dist writes %v, want two binaries", bins)
	}
	for _, p := range checkDockerfile("../Dockerfile", bins) {
		t.Error(p)
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil || !strings.Contains(string(ignore), "!dist/assertd-linux-*") {
		t.Errorf(".dockerignore does not let the dist binaries in (%v)", err)
	}
	// The checks see each of these changes.
	orig, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"FROM scratch", "FROM debian:bookworm-slim", "based on debian:bookworm-slim"},
		{"USER 65532:65532", "USER 0:0", "want a numeric non-root uid"},
		{"USER 65532:65532", "", "no USER"},
		{"dist/assertd-linux-${TARGETARCH}", "assertd", "make dist writes"},
		{"ARG TARGETARCH\n", "", "does not declare ARG TARGETARCH"},
		{"ca-certificates tzdata", "ca-certificates", "which does not install tzdata"},
		{"COPY --from=base /usr/share/zoneinfo /usr/share/zoneinfo\n", "", "no /usr/share/zoneinfo"},
		{`ENTRYPOINT ["/usr/bin/assertd"]`, "ENTRYPOINT /usr/bin/assertd", "not in exec form"},
		{"--config.file=/etc/assertd/assertd.yaml", "-c=/etc/assertd/assertd.yaml", "lacks --config.file"},
	} {
		if !strings.Contains(string(orig), tc.old) {
			t.Fatalf("the Dockerfile has no %q to change", tc.old)
		}
		p := t.TempDir() + "/Dockerfile"
		if err := os.WriteFile(p, []byte(strings.Replace(string(orig), tc.old, tc.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(checkDockerfile(p, bins), "\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("with %q for %q: problems %q, want %q", tc.new, tc.old, got, tc.want)
		}
	}
}

func TestParseDockerfileRefusesBrokenFiles(t *testing.T) {
	for text, want := range map[string]string{
		"COPY a b\nFROM scratch\n":      "COPY before FROM",
		"FROM scratch\nRUN a \\\n":      "ends with a continuation",
		"ARG X\nFROM scratch\nUSER 1\n": "",
	} {
		p := t.TempDir() + "/Dockerfile"
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := parseDockerfile(p)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: err %v, want %q", text, err, want)
		}
	}
}
