package assertd

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

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
		return nil, fmt.Errorf("invalid template: %s", parseHint(msg))
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
		if err := checkPattern(n); err != nil {
			return err
		}
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

// checkPattern checks the literal pattern of a call to match or
// reReplaceAll, which would otherwise fail only when the template runs.
func checkPattern(n *parse.CommandNode) error {
	if len(n.Args) < 2 {
		return nil
	}
	fn, ok := n.Args[0].(*parse.IdentifierNode)
	if !ok || fn.Ident != "match" && fn.Ident != "reReplaceAll" {
		return nil
	}
	pat, ok := n.Args[1].(*parse.StringNode)
	if !ok {
		return nil
	}
	if _, err := regexp.Compile(pat.Text); err != nil {
		return fmt.Errorf("%s: the pattern %s is not a regular expression (Go's RE2 syntax, as in Prometheus): %v", fn.Ident, pat.Quoted, err)
	}
	return nil
}
