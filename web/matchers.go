package web

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/assertd/assertd"
)

// ParseMatchers reads label matchers written the Prometheus way:
// {instance="db1", env=~"prod|staging", job!="x", zone!~"eu-.*"}. The braces
// are optional; values are double-quoted Go strings.
func ParseMatchers(s string) ([]assertd.Matcher, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		if !strings.HasSuffix(s, "}") {
			return nil, fmt.Errorf("%q: a matcher list that opens with { must close with }", s)
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	var out []assertd.Matcher
	for s != "" {
		i := 0
		for i < len(s) && (isLabelChar(s[i]) || (i > 0 && s[i] >= '0' && s[i] <= '9')) {
			i++
		}
		name := s[:i]
		if name == "" {
			return nil, fmt.Errorf("%q: expected a label name", s)
		}
		rest := strings.TrimSpace(s[i:])
		var op assertd.MatchOp
		for _, o := range []assertd.MatchOp{assertd.MatchRegexp, assertd.MatchNotRegex, assertd.MatchNotEqual, assertd.MatchEqual} {
			if strings.HasPrefix(rest, string(o)) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, fmt.Errorf("label %s: expected =, !=, =~ or !~ after the name", name)
		}
		rest = strings.TrimSpace(rest[len(op):])
		if !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf(`label %s: the value must be double-quoted, such as %s%s"value"`, name, name, op)
		}
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return nil, fmt.Errorf("label %s: the value is not a valid quoted string", name)
		}
		v, _ := strconv.Unquote(q)
		m := assertd.Matcher{Name: name, Op: op, Value: v}
		if err := m.Validate(); err != nil {
			return nil, err
		}
		out = append(out, m)
		rest = strings.TrimSpace(rest[len(q):])
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("after %s: expected a comma between matchers", m)
			}
			rest = strings.TrimSpace(rest[1:])
			if rest == "" {
				return nil, fmt.Errorf("a matcher list must not end with a comma")
			}
		}
		s = rest
	}
	return out, nil
}

func isLabelChar(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// matchersString writes matchers back as {a="b", …}.
func matchersString(ms []assertd.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// ParseLabels reads an exact label set: {instance="db1", env="prod"}.
func ParseLabels(s string) (assertd.Labels, error) {
	ms, err := ParseMatchers(s)
	if err != nil {
		return nil, err
	}
	ls := assertd.Labels{}
	for _, m := range ms {
		if m.Op != assertd.MatchEqual {
			return nil, fmt.Errorf("label %s: a label set takes = only, not %s", m.Name, m.Op)
		}
		if _, dup := ls[m.Name]; dup {
			return nil, fmt.Errorf("label %s is given twice", m.Name)
		}
		ls[m.Name] = m.Value
	}
	return ls, nil
}
