package assertd

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// TemplateFuncs are the functions that annotation, lock and step templates
// may call, besides text/template's built-ins.
func TemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"humanize": humanize,
		"humanizeDuration": func(seconds float64) string {
			return time.Duration(seconds * float64(time.Second)).Round(time.Millisecond).String()
		},
		"humanizePercentage": func(ratio float64) string { return fmt.Sprintf("%.4g%%", ratio*100) },
		"lower":              strings.ToLower,
		"upper":              strings.ToUpper,
		"trim":               strings.TrimSpace,
		"join":               func(sep string, s []string) string { return strings.Join(s, sep) },
	}
}

func humanize(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v)
	}
	prefixes := []string{"", "k", "M", "G", "T", "P", "E"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", v, prefixes[i])
}

// TemplateFields says which fields a template may use: a top-level field
// name (Labels) maps to the keys it accepts (Values: the query names), or to
// nil when any key is fine.
type TemplateFields map[string][]string

// ParseTemplate parses text as a Go template with TemplateFuncs and checks
// that every field it uses is one of fields.
func ParseTemplate(name, text string, fields TemplateFields) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=zero").Funcs(TemplateFuncs()).Parse(text)
	if err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "template: ") {
			msg = msg[i+2:]
		}
		return nil, fmt.Errorf("invalid template: %s", msg)
	}
	if t.Tree == nil {
		return t, nil
	}
	if err := checkFields(t.Tree.Root, fields, false); err != nil {
		return nil, err
	}
	return t, nil
}

func checkFields(n parse.Node, fields TemplateFields, dotMoved bool) error {
	check := func(ident []string) error {
		if len(ident) == 0 {
			return nil
		}
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, k)
		}
		slices.Sort(names)
		keys, ok := fields[ident[0]]
		if !ok {
			return fmt.Errorf("template uses .%s, which does not exist; the fields are .%s", ident[0], strings.Join(names, ", ."))
		}
		if keys != nil && len(ident) > 1 && !slices.Contains(keys, ident[1]) {
			hint := "there are none"
			if len(keys) > 0 {
				hint = "they are " + strings.Join(keys, ", ")
			}
			return fmt.Errorf("template uses .%s.%s, which does not exist (%s)", ident[0], ident[1], hint)
		}
		return nil
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkFields(c, fields, dotMoved); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkFields(n.Pipe, fields, dotMoved)
	case *parse.TemplateNode:
		return checkFields(n.Pipe, fields, dotMoved)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := checkFields(c, fields, dotMoved); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := checkFields(a, fields, dotMoved); err != nil {
				return err
			}
		}
	case *parse.FieldNode:
		if !dotMoved {
			return check(n.Ident)
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			return check(n.Ident[1:])
		}
	case *parse.ChainNode:
		return checkFields(n.Node, fields, dotMoved)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, fields, dotMoved, false)
	case *parse.RangeNode:
		return checkBranch(&n.BranchNode, fields, dotMoved, true)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, fields, dotMoved, true)
	}
	return nil
}

func checkBranch(b *parse.BranchNode, fields TemplateFields, dotMoved, moves bool) error {
	if err := checkFields(b.Pipe, fields, dotMoved); err != nil {
		return err
	}
	if err := checkFields(b.List, fields, dotMoved || moves); err != nil {
		return err
	}
	return checkFields(b.ElseList, fields, dotMoved)
}
