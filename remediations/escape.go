package remediations

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode"
	"unicode/utf8"
)

// Templates in steps are escaped by construction, each in its context, the
// way html/template escapes HTML (simplified): the literal text around each
// action says where its value lands, and the value is escaped for that
// place before it is written.
//
//   - url: the scheme and host must be literal text (no action before the
//     path starts); a value in the path is one path segment (every byte but
//     A-Z a-z 0-9 - . _ ~ percent-encoded, so / ? # % cannot reach the
//     target as syntax; "", "." and ".." are refused); a value in the query
//     or the fragment is percent-encoded the same way.
//   - body of a JSON request (Content-Type application/json or
//     application/*+json): a value inside a JSON string is escaped as
//     string content; a value outside strings is written as a JSON value
//     (a string quoted, a number as a number). Other bodies with actions
//     must say body_escape: none.
//   - run: a value holding a control character (newline, NUL, …) is
//     refused; an element that begins with a value (rather than literal
//     text) is refused when it renders starting with "-", so that a value
//     is never read as an option.
//
// A value that is refused stops the template: the run is refused before
// its first step, with the reason.

// escContext is where a template's output is being written.
type escContext int

const (
	urlScheme    escContext = iota // before "://": scheme
	urlAuthority                   // after "://", before the path: host and port
	urlPath
	urlQuery
	urlFragment
	jsonBare   // a JSON body, outside strings
	jsonString // inside a JSON string
	jsonEscape // just after a backslash inside a JSON string
	argvStart  // a run element, nothing written yet
	argvRest   // a run element, after some output
	plain      // no escaping (body_escape: none)
)

func (c escContext) String() string {
	return [...]string{"the url's scheme", "the url's host", "the url's path", "the url's query", "the url's fragment",
		"the JSON body", "a JSON string", "a JSON escape sequence", "the start of the argument", "the argument", "the body"}[c]
}

// valueError is a value that an escaper refused.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

// advance moves c over literal text.
func advance(c escContext, text string) escContext {
	for i := 0; i < len(text); i++ {
		b := text[i]
		switch c {
		case urlScheme:
			if strings.HasPrefix(text[i:], "://") {
				c, i = urlAuthority, i+2
			}
		case urlAuthority:
			switch b {
			case '/':
				c = urlPath
			case '?':
				c = urlQuery
			case '#':
				c = urlFragment
			}
		case urlPath:
			switch b {
			case '?':
				c = urlQuery
			case '#':
				c = urlFragment
			}
		case urlQuery:
			if b == '#' {
				c = urlFragment
			}
		case jsonBare:
			if b == '"' {
				c = jsonString
			}
		case jsonString:
			switch b {
			case '\\':
				c = jsonEscape
			case '"':
				c = jsonBare
			}
		case jsonEscape:
			c = jsonString
		case argvStart:
			c = argvRest
		}
	}
	return c
}

// escaper rewrites a parsed template so that every action's value passes
// through the escaper of its context.
type escaper struct {
	t     *template.Template
	funcs template.FuncMap
	what  string // url, body, run[2]: for messages
	err   error
}

// escapeTemplate escapes t, which writes in context start, and returns the
// context it ends in. A template whose structure makes a value's context
// unclear (an action in the url's host, branches ending in different
// parts) is an error that says what to write instead.
func escapeTemplate(t *template.Template, what string, start escContext) (escContext, error) {
	if t == nil || t.Tree == nil || start == plain {
		return start, nil
	}
	e := &escaper{t: t, funcs: template.FuncMap{}, what: what}
	end := e.list(t.Tree.Root, start)
	if e.err != nil {
		return end, e.err
	}
	t.Funcs(e.funcs)
	return end, nil
}

func (e *escaper) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
}

func (e *escaper) list(l *parse.ListNode, c escContext) escContext {
	if l == nil {
		return c
	}
	for _, n := range l.Nodes {
		c = e.node(n, c)
	}
	return c
}

func (e *escaper) node(n parse.Node, c escContext) escContext {
	if c == urlScheme || c == urlAuthority {
		if _, ok := n.(*parse.TextNode); !ok {
			if _, ok := n.(*parse.CommentNode); !ok {
				e.fail("%s: %s cannot come from a template (%s): write the scheme and host literally, such as https://lb.internal/servers/{{ .Labels.instance }}; label values may only fill the path or the query", e.what, c, n)
				return c
			}
		}
	}
	switch n := n.(type) {
	case *parse.TextNode:
		return advance(c, string(n.Text))
	case *parse.CommentNode:
		return c
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return c // an assignment writes nothing
		}
		if c == jsonEscape {
			e.fail("%s: %s follows a backslash inside a JSON string: write the value without a backslash before it", e.what, n)
			return c
		}
		name := fmt.Sprintf("_assertd_escape_%d", len(e.funcs))
		e.funcs[name] = escapeFunc(c, e.what, n.String())
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos,
			Args: []parse.Node{parse.NewIdentifier(name).SetTree(e.t.Tree).SetPos(n.Pos)}})
		if c == argvStart {
			return argvRest
		}
		return c
	case *parse.IfNode:
		return e.branch(&n.BranchNode, c, "if", false)
	case *parse.WithNode:
		return e.branch(&n.BranchNode, c, "with", false)
	case *parse.RangeNode:
		return e.branch(&n.BranchNode, c, "range", true)
	case *parse.TemplateNode:
		e.fail("%s: {{template}} cannot be used here: its values could not be escaped for %s; write the text inline", e.what, c)
	case *parse.BreakNode, *parse.ContinueNode:
		e.fail("%s: {{break}} and {{continue}} cannot be used here: write the loop without them", e.what)
	default:
		e.fail("%s: %s cannot be used here", e.what, n)
	}
	return c
}

func (e *escaper) branch(b *parse.BranchNode, c escContext, kind string, loop bool) escContext {
	then := e.list(b.List, c)
	els := c
	if b.ElseList != nil {
		els = e.list(b.ElseList, c)
	}
	if c == argvStart || c == argvRest {
		if then != els || loop && then != c {
			return argvStart // a later value may be the first output: checked as such
		}
		return then
	}
	switch {
	case loop && then != c:
		e.fail("%s: the body of {{%s}} moves from %s to %s, so values after it could land in either: keep ? # and quotes outside the loop", e.what, kind, c, then)
	case then != els:
		e.fail("%s: the branches of {{%s}} end in different places (%s and %s), so the values after it could not be escaped: keep ? # and quotes outside the condition", e.what, kind, then, els)
	}
	return then
}

// escapeFunc returns the function an action's value passes through in
// context c; action is the action as written, for messages.
func escapeFunc(c escContext, what, action string) func(...any) (string, error) {
	refuse := func(format string, args ...any) (string, error) {
		return "", &valueError{fmt.Sprintf("%s: %s %s", what, action, fmt.Sprintf(format, args...))}
	}
	return func(args ...any) (string, error) {
		var v any
		if len(args) > 0 {
			v = args[len(args)-1]
		}
		switch c {
		case urlPath:
			s := text(v)
			switch s {
			case "":
				return refuse("is empty: the url path would name another resource; nothing is sent")
			case ".", "..":
				return refuse("gives %q, a dot segment that would move up the url path; nothing is sent", s)
			}
			return percentEncode(s), nil
		case urlQuery, urlFragment:
			return percentEncode(text(v)), nil
		case jsonString:
			b, err := jsonMarshal(text(v))
			if err != nil {
				return refuse("cannot be written in JSON: %v", err)
			}
			return string(b[1 : len(b)-1]), nil
		case jsonBare:
			if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
				return refuse("is %v, which JSON cannot hold; nothing is sent", f)
			}
			b, err := jsonMarshal(v)
			if err != nil {
				return refuse("cannot be written in JSON: %v", err)
			}
			return string(b), nil
		case argvStart, argvRest:
			s := text(v)
			if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return refuse("gives %s, which holds the control character %U (a newline, NUL or the like): nothing runs", shortQuote(s), r)
			}
			if !utf8.ValidString(s) {
				return refuse("gives %s, which is not valid UTF-8: nothing runs", shortQuote(s))
			}
			if c == argvStart && strings.HasPrefix(s, "-") {
				return refuse("gives %s, which starts with \"-\" and would be read as an option: nothing runs", shortQuote(s))
			}
			return s, nil
		}
		return text(v), nil
	}
}

// text is a value as text/template prints it.
func text(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func jsonMarshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// percentEncode encodes every byte but the unreserved ones of RFC 3986.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// shortQuote quotes s for a message, cut to 64 bytes.
func shortQuote(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q…", s[:64])
	}
	return fmt.Sprintf("%q", s)
}

// valueRefusal returns the message of a value an escaper refused in err, if any.
func valueRefusal(err error) (string, bool) {
	var ve *valueError
	if errors.As(err, &ve) {
		return ve.msg, true
	}
	return "", false
}

// literalPrefix is the text a template writes before its first action or
// control structure.
func literalPrefix(t *template.Template) string {
	if t == nil || t.Tree == nil || t.Tree.Root == nil {
		return ""
	}
	var b strings.Builder
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			b.Write(n.Text)
		case *parse.CommentNode:
		default:
			return b.String()
		}
	}
	return b.String()
}

// urlBase checks the literal scheme and host a url template starts with
// and returns them parsed.
func urlBase(t *template.Template, raw string) (*url.URL, error) {
	prefix := literalPrefix(t)
	if i := strings.Index(prefix, "://"); i >= 0 {
		if j := strings.IndexAny(prefix[i+3:], "/?#"); j >= 0 {
			prefix = prefix[:i+3+j]
		}
	}
	u, err := url.Parse(prefix)
	switch {
	case err != nil:
		return nil, fmt.Errorf("url does not parse: %v", errors.Unwrap(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("url must start with http:// or https://, got %q", raw)
	case u.User != nil:
		return nil, errors.New("url carries credentials: secrets only by reference: use headers: {Authorization: {secret_env: VARIABLE, prefix: \"Basic \"}}")
	case u.Host == "":
		return nil, fmt.Errorf("url has no host: %q", raw)
	}
	return u, nil
}
