package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Diff is what one version of the rules (the replayed one) would have done
// differently from another (the base) over the same window.
type Diff struct {
	From, To  time.Time
	Base      string       `json:"base"` // the directory or git ref compared with
	Asserts   []AssertDiff `json:"asserts"`
	BasePages int          `json:"base_pages"`
	Pages     int          `json:"pages"`
	BaseRuns  int          `json:"base_remediations"`
	Runs      int          `json:"remediations"`
}

// AssertDiff is one assert's difference. Added are in the replayed version
// and not in the base, Removed the other way round.
type AssertDiff struct {
	Name         string      `json:"name"`
	PagesAdded   []Page      `json:"pages_added"`
	PagesRemoved []Page      `json:"pages_removed"`
	RunsAdded    []RunRecord `json:"remediations_added"`
	RunsRemoved  []RunRecord `json:"remediations_removed"`
}

// MorePages reports whether the replayed version pages more than the base.
func (d *Diff) MorePages() bool { return d.Pages > d.BasePages }

// Compare lists the pages and runs of rep that base has not, and those of
// base that rep has not, matched by assert, channel, level, labels and time.
func Compare(base, rep *Report, baseName string) *Diff {
	d := &Diff{From: rep.From, To: rep.To, Base: baseName, BasePages: base.Total.PagesSent, Pages: rep.Total.PagesSent,
		BaseRuns: base.Total.Remediated, Runs: rep.Total.Remediated}
	find := func(r *Report, name string) *AssertReport {
		for i := range r.Asserts {
			if r.Asserts[i].Name == name {
				return &r.Asserts[i]
			}
		}
		return &AssertReport{Name: name}
	}
	var names []string
	for _, r := range []*Report{rep, base} {
		for _, a := range r.Asserts {
			if !slices.Contains(names, a.Name) {
				names = append(names, a.Name)
			}
		}
	}
	slices.Sort(names)
	pageKey := func(p Page) string {
		return fmt.Sprintf("%s|%d|%s|%d", p.Channel, p.Level, p.Labels, p.At.UnixNano())
	}
	runKey := func(r RunRecord) string {
		return fmt.Sprintf("%s|%s|%d", r.Remediation, r.Labels, r.Started.UnixNano())
	}
	for _, name := range names {
		n, b := find(rep, name), find(base, name)
		ad := AssertDiff{Name: name}
		ad.PagesAdded, ad.PagesRemoved = difference(n.Pages, b.Pages, pageKey)
		ad.RunsAdded, ad.RunsRemoved = difference(n.Runs, b.Runs, runKey)
		if len(ad.PagesAdded)+len(ad.PagesRemoved)+len(ad.RunsAdded)+len(ad.RunsRemoved) > 0 {
			d.Asserts = append(d.Asserts, ad)
		}
	}
	return d
}

// difference is what of a is not in b and what of b is not in a, as
// multisets under key.
func difference[T any](a, b []T, key func(T) string) (added, removed []T) {
	count := map[string]int{}
	for _, x := range b {
		count[key(x)]++
	}
	for _, x := range a {
		if k := key(x); count[k] > 0 {
			count[k]--
		} else {
			added = append(added, x)
		}
	}
	count = map[string]int{}
	for _, x := range a {
		count[key(x)]++
	}
	for _, x := range b {
		if k := key(x); count[k] > 0 {
			count[k]--
		} else {
			removed = append(removed, x)
		}
	}
	return added, removed
}

// WriteDiff writes the difference as text, json or markdown.
func WriteDiff(w io.Writer, d *Diff, format string) error {
	var b strings.Builder
	md := format == "markdown"
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	case "", "text", "markdown":
	default:
		return fmt.Errorf("--format %s with --compare: write text, json or markdown", format)
	}
	if md {
		fmt.Fprintf(&b, "### assertd replay: this change against %s, %s – %s UTC\n\n", d.Base, ts(d.From), ts(d.To))
	} else {
		fmt.Fprintf(&b, "compared with %s, %s – %s UTC:\n", d.Base, ts(d.From), ts(d.To))
	}
	fmt.Fprintf(&b, "pages %d → %d (%s), remediations %d → %d (%s)\n", d.BasePages, d.Pages, signed(d.Pages-d.BasePages), d.BaseRuns, d.Runs, signed(d.Runs-d.BaseRuns))
	if len(d.Asserts) == 0 {
		b.WriteString("\nno page and no remediation differs\n")
	}
	item := "  "
	if md {
		item = "- "
	}
	for _, a := range d.Asserts {
		if md {
			fmt.Fprintf(&b, "\n#### `%s`: %s\n\n", a.Name, summary(a))
		} else {
			fmt.Fprintf(&b, "\n%s: %s\n", a.Name, summary(a))
		}
		for _, p := range a.PagesAdded {
			fmt.Fprintf(&b, "%s+ page %s %s level %d %s\n", item, ts(p.At), p.Channel, p.Level, p.Labels)
		}
		for _, p := range a.PagesRemoved {
			fmt.Fprintf(&b, "%s- page %s %s level %d %s\n", item, ts(p.At), p.Channel, p.Level, p.Labels)
		}
		for _, r := range a.RunsAdded {
			fmt.Fprintf(&b, "%s+ run  %s %s %s (%s)\n", item, ts(r.Started), r.Remediation, r.Labels, r.Status)
		}
		for _, r := range a.RunsRemoved {
			fmt.Fprintf(&b, "%s- run  %s %s %s (%s)\n", item, ts(r.Started), r.Remediation, r.Labels, r.Status)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func summary(a AssertDiff) string {
	var parts []string
	if n := len(a.PagesAdded); n > 0 {
		parts = append(parts, fmt.Sprintf("%d more page%s", n, plural(n)))
	}
	if n := len(a.PagesRemoved); n > 0 {
		parts = append(parts, fmt.Sprintf("%d page%s fewer", n, plural(n)))
	}
	if n := len(a.RunsAdded); n > 0 {
		parts = append(parts, fmt.Sprintf("%d more remediation%s", n, plural(n)))
	}
	if n := len(a.RunsRemoved); n > 0 {
		parts = append(parts, fmt.Sprintf("%d remediation%s fewer", n, plural(n)))
	}
	return strings.Join(parts, ", ")
}

func signed(n int) string {
	if n > 0 {
		return fmt.Sprintf("+%d", n)
	}
	return fmt.Sprint(n)
}

// Version is a second version of the rules: the config in a directory, or
// in a git ref checked out to a temporary worktree.
type Version struct {
	Config string // the config file of that version
	Name   string
	remove func()
}

// Close removes the temporary worktree, if any.
func (v *Version) Close() {
	if v.remove != nil {
		v.remove()
	}
}

// OpenVersion finds the config of another version of the rules. dirOrRef is
// a directory (the config is at the same path relative to it as configPath
// is to its repository's top level, or at its base name) or a git ref of
// the repository that holds configPath.
func OpenVersion(ctx context.Context, configPath, dirOrRef string) (*Version, error) {
	abs, err := filepath.Abs(configPath)
	if err != nil {
		return nil, err
	}
	rel := filepath.Base(abs)
	top, gitErr := git(ctx, filepath.Dir(abs), "rev-parse", "--show-toplevel")
	if gitErr == nil {
		if r, err := filepath.Rel(top, abs); err == nil {
			rel = r
		}
	}
	if fi, err := os.Stat(dirOrRef); err == nil && fi.IsDir() {
		for _, p := range []string{filepath.Join(dirOrRef, rel), filepath.Join(dirOrRef, filepath.Base(abs))} {
			if _, err := os.Stat(p); err == nil {
				return &Version{Config: p, Name: dirOrRef}, nil
			}
		}
		return nil, fmt.Errorf("--compare %s: no %s in it (write the directory of the other version of the rules)", dirOrRef, rel)
	}
	if gitErr != nil {
		return nil, fmt.Errorf("--compare %s: not a directory, and %s is not in a git repository to find it as a ref in", dirOrRef, configPath)
	}
	if _, err := git(ctx, top, "rev-parse", "--verify", "--quiet", dirOrRef+"^{commit}"); err != nil {
		return nil, fmt.Errorf("--compare %s: neither a directory nor a git ref of %s", dirOrRef, top)
	}
	tmp, err := os.MkdirTemp("", "assertd-replay-compare-")
	if err != nil {
		return nil, err
	}
	wt := filepath.Join(tmp, "rules")
	if _, err := git(ctx, top, "worktree", "add", "--detach", wt, dirOrRef); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("--compare %s: checking it out: %w", dirOrRef, err)
	}
	remove := func() {
		_, _ = git(context.WithoutCancel(ctx), top, "worktree", "remove", "--force", wt)
		os.RemoveAll(tmp)
	}
	p := filepath.Join(wt, rel)
	if _, err := os.Stat(p); err != nil {
		remove()
		return nil, fmt.Errorf("--compare %s: the ref has no %s", dirOrRef, rel)
	}
	return &Version{Config: p, Name: dirOrRef, remove: remove}, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}
