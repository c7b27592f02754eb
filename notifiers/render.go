package notifiers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// state words the title of a message.
func state(m *Message) string {
	switch {
	case m.Kind == assertd.NoticeResolve:
		return "RESOLVED"
	case m.Kind == assertd.NoticeAck:
		return "ACKNOWLEDGED"
	case m.Kind == assertd.NoticeInfo && m.Notices[0].Approval != "":
		return "APPROVAL NEEDED"
	case m.Kind == assertd.NoticeInfo:
		return "INFO"
	case m.Level > 0 || m.Round > 0:
		return fmt.Sprintf("FIRING (level %d, round %d)", m.Level+1, m.Round+1)
	}
	return "FIRING"
}

// title is one line: what happened to which assert.
func title(m *Message) string {
	n := m.Notices[0]
	t := state(m) + ": " + n.Assert
	if len(m.Notices) > 1 {
		t += fmt.Sprintf(" (%d instances)", len(m.Notices))
	} else if len(n.Labels) > 0 {
		t += " " + n.Labels.String()
	}
	return t
}

// summary is a notice in one sentence: its summary annotation, else its reason.
func summary(n assertd.Notice) string {
	if s := strings.TrimSpace(n.Annotations["summary"]); s != "" {
		return s
	}
	return n.Reason
}

// values renders a notice's values, sorted by name.
func values(v map[string]float64) string {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=" + strconv.FormatFloat(v[k], 'g', 6, 64))
	}
	return b.String()
}

// runSummary tells the run, state and times of a notice.
func runSummary(n assertd.Notice) string {
	s := "state " + string(n.State)
	if !n.Since.IsZero() {
		s += " since " + n.Since.UTC().Format(time.RFC3339)
	}
	if n.RunID != "" {
		s += " · run " + n.RunID
	}
	if n.Policy != "" {
		s += " · policy " + n.Policy
	}
	return s
}

// uiLink links an instance in the UI ("" without an external URL).
func uiLink(base string, n assertd.Notice) string {
	if base == "" || n.Assert == "" || n.Fingerprint == "" {
		return ""
	}
	u := strings.TrimRight(base, "/") + "/asserts/" + url.PathEscape(n.Assert)
	if n.Fingerprint != "" {
		u += "?instance=" + url.QueryEscape(n.Fingerprint)
	}
	return u
}

// severity maps an instance's severity label to PagerDuty's four.
func severity(n assertd.Notice) string {
	switch strings.ToLower(n.Labels["severity"]) {
	case "critical", "page", "crit", "p1", "fatal":
		return "critical"
	case "error", "err", "p2":
		return "error"
	case "warning", "warn", "ticket", "p3":
		return "warning"
	case "info", "informational", "p4", "p5":
		return "info"
	}
	if n.Kind == assertd.NoticeInfo {
		return "info"
	}
	return "critical"
}

// groupKey is the dedup key of a group of pages: the policy, the assert
// and the values of the group_by labels.
func groupKey(policy string, by []string, n assertd.Notice) string {
	var b strings.Builder
	b.WriteString(policy + "\x00" + n.Assert)
	for _, l := range by {
		b.WriteString("\x00" + l + "=" + n.Labels[l])
	}
	h := sha256.Sum256([]byte(b.String()))
	return "group/" + n.Assert + "/" + hex.EncodeToString(h[:8])
}

// stableKey shortens a dedup key to at most n bytes, keeping it stable.
func stableKey(k string, n int) string {
	if len(k) <= n {
		return k
	}
	h := sha256.Sum256([]byte(k))
	return truncate(k, n-18) + "#" + hex.EncodeToString(h[:8])
}
