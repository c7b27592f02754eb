package remediations

import (
	"fmt"
	"mime"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/prometheus/common/model"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
)

// allowPattern is one allow: entry: the pattern a label's value must match
// before a run starts.
type allowPattern struct {
	Label   string
	Pattern string // as written
	re      *regexp.Regexp
}

func compileAllow(allow map[string]string, loc strictyaml.Loc, errs *strictyaml.Errors) []allowPattern {
	var out []allowPattern
	for label, pat := range allow {
		at := loc.At("allow", label)
		if !model.UTF8Validation.IsValidLabelName(label) || strings.HasPrefix(label, "__") {
			errs.Add(at, "allow: %q is not a label name", label)
			continue
		}
		if pat == "" {
			errs.Add(at, "allow: the pattern of %s is empty: write the values it may take, such as %s: '^[a-z0-9-]+$'", label, label)
			continue
		}
		re, err := regexp.Compile("^(?:" + pat + ")$")
		if err != nil {
			errs.Add(at, "allow: the pattern of %s is not a regular expression: %v", label, err)
			continue
		}
		out = append(out, allowPattern{Label: label, Pattern: pat, re: re})
	}
	slices.SortFunc(out, func(a, b allowPattern) int { return strings.Compare(a.Label, b.Label) })
	return out
}

// allowed checks the instance's labels against the allow patterns; it
// returns why not, or "".
func (c *Compiled) allowed(ls assertd.Labels) string {
	for _, p := range c.Allow {
		if v := ls[p.Label]; !p.re.MatchString(v) {
			return fmt.Sprintf("allow: label %s=%s does not match %s: nothing runs for this value", p.Label, shortQuote(v), p.Pattern)
		}
	}
	return ""
}

// jsonContentType reports whether the headers declare a JSON body.
func jsonContentType(hs map[string]Value) bool {
	for name, v := range hs {
		if !strings.EqualFold(name, "Content-Type") || v.IsSecret() {
			continue
		}
		mt, _, err := mime.ParseMediaType(v.Value)
		if err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
			return true
		}
	}
	return false
}

// hasActions reports whether a template writes anything but literal text.
func hasActions(t *template.Template) bool {
	if t == nil || t.Tree == nil || t.Tree.Root == nil {
		return false
	}
	for _, n := range t.Tree.Root.Nodes {
		switch n.(type) {
		case *parse.TextNode, *parse.CommentNode:
		default:
			return true
		}
	}
	return false
}

// labelsUsed returns the labels a template reads by name, and whether it
// reads .Labels as a whole (then any label may reach it).
func labelsUsed(t *template.Template) (names []string, whole bool) {
	if t == nil || t.Tree == nil {
		return nil, false
	}
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	field := func(ident []string) {
		if len(ident) == 0 || ident[0] != "Labels" {
			return
		}
		if len(ident) > 1 {
			add(ident[1])
		} else {
			whole = true
		}
	}
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n != nil {
				for _, c := range n.Cmds {
					walk(c)
				}
			}
		case *parse.CommandNode:
			if len(n.Args) >= 3 {
				if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "index" {
					if f, ok := n.Args[1].(*parse.FieldNode); ok && len(f.Ident) == 1 && f.Ident[0] == "Labels" {
						if s, ok := n.Args[2].(*parse.StringNode); ok {
							add(s.Text)
							for _, a := range n.Args[3:] {
								walk(a)
							}
							return
						}
					}
				}
			}
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.FieldNode:
			field(n.Ident)
		case *parse.VariableNode:
			if len(n.Ident) > 1 && n.Ident[0] == "$" {
				field(n.Ident[1:])
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		}
	}
	walk(t.Tree.Root)
	return names, whole
}

// unguardedLabels warns about each label a url or an argv element uses
// that no allow pattern constrains.
func unguardedLabels(c *Compiled, loc strictyaml.Loc) strictyaml.Errors {
	var warns strictyaml.Errors
	has := func(l string) bool {
		return slices.ContainsFunc(c.Allow, func(p allowPattern) bool { return p.Label == l })
	}
	check := func(t *template.Template, at strictyaml.Pos, what string) {
		names, whole := labelsUsed(t)
		if whole {
			warns.Add(at, "%s uses .Labels as a whole: any label value may reach it; name the labels and give each an allow pattern", what)
		}
		for _, l := range names {
			if !has(l) {
				warns.Add(at, "%s uses .Labels.%s, which has no allow pattern: add allow: {%s: '^[a-z0-9-]+$'} (the values it may take) so that nothing else reaches it", what, l, l)
			}
		}
	}
	for i := range c.Steps {
		st := &c.Steps[i]
		sat := loc.In("steps", i)
		for j, t := range st.Run {
			check(t, sat.At("run", j), fmt.Sprintf("step %s: run[%d]", st.Name, j))
		}
		if st.URL != nil {
			check(st.URL, sat.At("http", "url"), fmt.Sprintf("step %s: url", st.Name))
		}
	}
	return warns
}
