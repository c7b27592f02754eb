package strictyaml

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	yaml4 "go.yaml.in/yaml/v4"
)

// maxSyntaxErrors bounds how many syntax errors one file reports.
const maxSyntaxErrors = 20

// parseAll parses every document of data with the parser the decoder uses.
func parseAll(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, &doc)
	}
}

// locate parses data with the v4 parser, whose errors carry the line and
// column of the problem and of the construct it was found in (the v3
// parser's carry only a line, often that of the enclosing construct).
func locate(data []byte) *yaml4.LoadError {
	dec := yaml4.NewDecoder(strings.NewReader(string(data)))
	for {
		var doc yaml4.Node
		err := dec.Decode(&doc)
		if err == nil {
			continue
		}
		var le *yaml4.LoadError
		if errors.As(err, &le) {
			return le
		}
		return nil
	}
}

// syntaxErrors reports every syntax error of data that stands on its own:
// after each one, the broken line (with the lines nested below it) is
// blanked out and the rest parsed again, so that a mistake further down is
// reported too, while what the first mistake causes is not.
func syntaxErrors(file string, data []byte, first error) Errors {
	var errs Errors
	lines := splitLines(data)
	err := first
	for range maxSyntaxErrors {
		le := locate(data)
		if le == nil {
			// The parsers disagree; keep the line v3 reports.
			errs.Add(v3Pos(file, err, lines), "invalid YAML: %s", syntaxMsg(err))
			return errs.Sort()
		}
		d := diagnose(lines, le)
		d.pos.File = file
		errs.Add(d.pos, "invalid YAML: %s", d.msg)
		if !blank(lines, d.from, d.to) {
			return errs.Sort()
		}
		data = []byte(strings.Join(lines, "\n"))
		if _, err = parseAll(data); err == nil {
			return errs.Sort()
		}
	}
	return errs.Sort()
}

// lineBreaks are the line breaks of YAML, as its parsers count lines.
var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n")

// splitLines splits data into lines the way the parser numbers them.
func splitLines(data []byte) []string {
	return strings.Split(lineBreaks.Replace(string(data)), "\n")
}

// v3Pos is the position of a v3 error: its line, at the line's first
// character.
func v3Pos(file string, err error, lines []string) Pos {
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil && m[1] != "" {
		line, _ = strconv.Atoi(m[1])
	}
	col := 1
	if line >= 1 && line <= len(lines) {
		col = column(lines[line-1], indent(lines[line-1]))
	}
	return Pos{File: file, Line: line, Col: col}
}

// blank empties lines from..to (0-based, inclusive) and reports whether a
// line that held something was emptied.
func blank(lines []string, from, to int) bool {
	changed := false
	for i := max(from, 0); i <= to && i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "" {
			changed = true
		}
		lines[i] = ""
	}
	return changed
}

// diag is one syntax error explained: where, what to write instead, and the
// lines to blank out before looking for the next one.
type diag struct {
	pos      Pos
	msg      string
	from, to int
}

// source gives access to the lines of a document by 1-based number.
type source []string

func (s source) line(n int) string {
	if n < 1 || n > len(s) {
		return ""
	}
	return strings.TrimSuffix(s[n-1], "\r")
}

// block is the 0-based range of line n and of the lines after it that are
// nested deeper (blank and comment lines in between included).
func (s source) block(n int) (int, int) {
	if n < 1 || n > len(s) {
		return len(s), len(s)
	}
	base := indent(s.line(n))
	end := n
	for i := n + 1; i <= len(s); i++ {
		l := s.line(i)
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if indent(l) <= base {
			break
		}
		end = i
	}
	return n - 1, end - 1
}

func (s source) only(n int) (int, int) { return n - 1, n - 1 }

// indent is the byte length of the leading spaces and tabs of l.
func indent(l string) int { return len(l) - len(strings.TrimLeft(l, " \t")) }

// column is the 1-based column of byte offset i in l, in characters as the
// parser counts them.
func column(l string, i int) int { return utf8.RuneCountInString(l[:min(i, len(l))]) + 1 }

// byteAt is l[i], or '?' past the end of l.
func byteAt(l string, i int) byte {
	if i < len(l) {
		return l[i]
	}
	return '?'
}

// offset is the byte offset of 1-based column col in l.
func offset(l string, col int) int {
	i := 0
	for n := 1; n < col && i < len(l); n++ {
		_, size := utf8.DecodeRuneInString(l[i:])
		i += size
	}
	return i
}

// keyRE matches the start of a block line up to its value: indentation, any
// "- " item marks and a plain key followed by ": ".
var keyRE = regexp.MustCompile(`^[ \t]*(?:-[ \t]+)*(?:([^\s#'"{\[\]}&*!|>%@` + "`" + `,?:-][^#:]*?|-[^\s#:][^#:]*?):(?:[ \t]+|$))?`)

// value splits a line into the part before its value (indentation, item
// marks, key) and the value's byte offset; key is the key, or "".
func value(l string) (key string, at int) {
	key, _, at = value3(l)
	return key, at
}

// value3 is value with the byte offset of the key too (-1 when none).
func value3(l string) (key string, keyAt, at int) {
	m := keyRE.FindStringSubmatchIndex(l)
	if m == nil {
		return "", -1, indent(l)
	}
	if m[2] < 0 {
		return "", -1, m[1]
	}
	return l[m[2]:m[3]], m[2], m[1]
}

// quoted returns the byte offset at which a quoted value starting at i in l
// closes on the same line, or -1.
func quoted(l string, i int) int {
	q := l[i]
	for j := i + 1; j < len(l); j++ {
		switch {
		case q == '"' && l[j] == '\\':
			j++
		case q == '\'' && l[j] == '\'' && j+1 < len(l) && l[j+1] == '\'':
			j++
		case l[j] == q:
			return j
		}
	}
	return -1
}

// quote writes v as a YAML quoted scalar.
func quote(v string) string {
	if !strings.ContainsAny(v, `"\`) {
		return `"` + v + `"`
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// rewrite is line l with its value (from byte offset at) quoted, as advice.
func rewrite(l string, at int) string {
	v := l[at:]
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(l[:at]) + " " + quote(strings.TrimSpace(v))
}

func (s source) at(line, col int) Pos { return Pos{Line: line, Col: col} }

// diagnose explains the parser's error le in the user's words, at the place
// where the mistake most likely is.
func diagnose(lines []string, le *yaml4.LoadError) diag {
	s := source(lines)
	mark, ctx := le.Mark, le.ContextMark
	if mark.Line < 1 {
		mark.Line, mark.Column = 1, 1
	}
	if mark.Line > len(s) {
		mark.Line = len(s)
		mark.Column = column(s.line(mark.Line), len(s.line(mark.Line)))
	}
	if ctx.Line < 1 || ctx.Line > mark.Line {
		ctx = mark
	}
	ml := s.line(mark.Line)

	// "-name: a": an item mark with no space after it is part of the key.
	for n := max(mark.Line-1, 1); n <= mark.Line; n++ {
		l := s.line(n)
		if m := dashRE.FindStringIndex(l); m != nil {
			from, to := s.block(n)
			return diag{s.at(n, column(l, m[1]-1)), fmt.Sprintf("a space is missing after '-': write - %s", strings.TrimSpace(l[m[1]-1:])), from, to}
		}
	}

	// The text of a block value (key: |) indented no deeper than its key.
	for n := max(mark.Line-1, 1); n <= mark.Line; n++ {
		if p, ok := s.above(n); ok && blockScalarAbove(s, n) {
			l, pl := s.line(n), s.line(p)
			if key, kat, _ := value3(pl); indent(l) <= kat {
				from, to := s.only(n)
				return diag{s.at(n, column(l, indent(l))), fmt.Sprintf("the text of the block value (| or >) of %s must be indented deeper than %s (column %d)", key, key, column(pl, kat)), from, to}
			}
		}
	}

	// A tab in the indentation of the line the parser stopped at.
	if i := strings.IndexByte(ml[:indent(ml)], '\t'); i >= 0 {
		from, to := s.block(mark.Line)
		return diag{s.at(mark.Line, column(ml, i)), "this line is indented with a tab: YAML indents with spaces only; replace the tab with spaces", from, to}
	}

	// A quoted value whose closing quote is missing: the parser either
	// reached the end of the file, or closed it at a quote further down
	// and stopped shortly after.
	if le.ContextMsg == "while scanning a quoted scalar" {
		cl := s.line(ctx.Line)
		q := byteAt(cl, offset(cl, ctx.Column))
		from, to := s.only(ctx.Line)
		return diag{s.at(ctx.Line, ctx.Column), fmt.Sprintf("the quote %c opened here is never closed: end the value with %c", q, q), from, to}
	}
	if d, ok := unclosedQuote(s, mark.Line); ok {
		return d
	}

	// A Go template written unquoted: {{ starts a YAML flow mapping.
	for n := mark.Line; n >= ctx.Line && n >= 1; n-- {
		l := s.line(n)
		if _, at := value(l); strings.HasPrefix(l[at:], "{{") {
			from, to := s.only(n)
			return diag{s.at(n, column(l, at)), fmt.Sprintf("a value starting with {{ is read as a YAML mapping: quote the whole value: %s", rewrite(l, at)), from, to}
		}
	}

	switch {
	case le.Message == "mapping values are not allowed in this context":
		key, at := value(ml)
		colon := offset(ml, mark.Column)
		if key != "" && colon >= at {
			// key: some: value — the value holds ": ".
			from, to := s.only(mark.Line)
			return diag{s.at(mark.Line, column(ml, at)), fmt.Sprintf("a plain value cannot contain \": \": quote it: %s", rewrite(ml, at)), from, to}
		}
		if p, ok := s.above(mark.Line); ok && indent(ml) > indent(s.line(p)) {
			pl := s.line(p)
			if w := strings.TrimSpace(pl); bareWordRE.MatchString(w) {
				// "asserts" on a line of its own, its items below.
				from, to := s.only(p)
				return diag{s.at(p, column(pl, indent(pl)+len(w))), fmt.Sprintf("a ':' is missing after %s, which the lines below belong to: write %s:", w, w), from, to}
			}
			from, to := s.block(mark.Line)
			align := fmt.Sprintf("column %d", column(pl, indent(pl)))
			if pkey, kat, _ := value3(pl); kat >= 0 {
				align = fmt.Sprintf("%s (column %d)", pkey, column(pl, kat))
			}
			return diag{s.at(mark.Line, column(ml, indent(ml))), fmt.Sprintf("this line is indented deeper than line %d, so it reads as the rest of that line's value: align it with %s", p, align), from, to}
		}

	case le.Message == "could not find expected ':'":
		cl := s.line(ctx.Line)
		rest := cl[offset(cl, ctx.Column):]
		from, to := s.only(ctx.Line)
		if m := noSpaceRE.FindStringSubmatchIndex(rest); m != nil {
			i := offset(cl, ctx.Column) + m[3]
			return diag{s.at(ctx.Line, column(cl, i)), fmt.Sprintf("a space is missing after ':': write %s: %s", rest[:m[3]-1], strings.TrimSpace(rest[m[3]:])), from, to}
		}
		return diag{s.at(ctx.Line, ctx.Column), "a key without ':' (or a value on a line of its own): write key: value, or continue the value above on one line", from, to}

	case strings.HasPrefix(le.Message, "did not find expected ',' or ']'"), strings.HasPrefix(le.Message, "did not find expected ',' or '}'"):
		cl := s.line(ctx.Line)
		open := byteAt(cl, offset(cl, ctx.Column))
		closer := map[byte]byte{'[': ']', '{': '}'}[open]
		what := map[byte]string{'[': "list", '{': "mapping"}[open]
		if closer != 0 && !strings.ContainsRune(cl[offset(cl, ctx.Column):], rune(closer)) {
			from, to := s.only(ctx.Line)
			return diag{s.at(ctx.Line, ctx.Column), fmt.Sprintf("the %c opened here is never closed: end the %s with %c", open, what, closer), from, to}
		}
		from, to := s.only(mark.Line)
		return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("expected ',' or '%c' here, in the %s opened at line %d, column %d: separate items with \", \" and quote an item that holds ': '", closer, what, ctx.Line, ctx.Column), from, to}

	case le.Message == "block sequence entries are not allowed in this context":
		key, _ := value(ml)
		from, to := s.only(mark.Line)
		if key == "" {
			key = "key"
		}
		return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("a list cannot start on the line of its key: write %s: [a, b], or each \"- item\" on a line of its own below %s:, indented", key, key), from, to}

	case le.Message == "did not find expected node content":
		from, to := s.only(mark.Line)
		if c := byteAt(ml, offset(ml, mark.Column)); c == ',' || c == ']' || c == '}' {
			return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("an item is missing before this %q: remove the extra ','", c), from, to}
		}
		return diag{s.at(mark.Line, mark.Column), "a value is missing here", from, to}

	case le.Message == "found character that cannot start any token":
		c, _ := utf8.DecodeRuneInString(ml[offset(ml, mark.Column):])
		from, to := s.only(mark.Line)
		if _, at := value(ml); offset(ml, mark.Column) == at {
			return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("%q is reserved in YAML and cannot start a plain value: quote it: %s", c, rewrite(ml, at)), from, to}
		}
		return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("%q cannot start a value here: quote the value", c), from, to}

	case strings.HasPrefix(le.Message, "unknown anchor"):
		name := strings.Trim(strings.TrimSuffix(strings.TrimPrefix(le.Message, "unknown anchor "), " referenced"), "'")
		from, to := s.only(mark.Line)
		return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("*%s refers to no anchor: define it above with &%s, or quote the value if the * is meant literally", name, name), from, to}

	case le.Message == "did not find expected '-' indicator":
		from, to := s.block(mark.Line)
		if p, ok := s.above(mark.Line); ok && mark.Column > ctx.Column {
			if pkey, kat, _ := value3(s.line(p)); kat >= 0 && column(s.line(p), kat) > mark.Column {
				return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("this line (column %d) is indented less than %s above (column %d) and more than the list (column %d): align it with %s, or start a new item with \"- \" at column %d", mark.Column, pkey, column(s.line(p), kat), ctx.Column, pkey, ctx.Column), from, to}
			}
		}
		return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("expected a list item (\"- \") at column %d, like the one at line %d: start this line with \"- \", or indent it under the item above", ctx.Column, ctx.Line), from, to}

	case le.Message == "did not find expected key" && offset(ml, mark.Column) > indent(ml):
		// Something follows a complete value on its line.
		from, to := s.only(mark.Line)
		i := offset(ml, mark.Column)
		before := strings.TrimRight(ml[:i], " \t")
		if q := byteAt(before, len(before)-1); len(before) > 0 && (q == '"' || q == '\'') {
			_, at := value(ml)
			return diag{s.at(mark.Line, column(ml, len(before)-1)), fmt.Sprintf("this quote ends the value that starts at column %d, and text follows it: %s", column(ml, at), innerQuoteAdvice(q)), from, to}
		}
		c, _ := utf8.DecodeRuneInString(ml[i:])
		return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("unexpected %q after the value: remove it, or quote the whole value if it belongs to it", c), from, to}

	case le.Message == "did not find expected key":
		from, to := s.block(mark.Line)
		return diag{s.at(mark.Line, mark.Column), fmt.Sprintf("expected a key (name: value) at column %d, aligned with the mapping that starts at line %d: fix this line's indentation", ctx.Column, ctx.Line), from, to}
	}

	msg := le.Message
	if le.ContextMsg != "" && ctx != mark {
		msg += fmt.Sprintf(" (%s at line %d, column %d)", le.ContextMsg, ctx.Line, ctx.Column)
	}
	from, to := s.block(mark.Line)
	return diag{s.at(mark.Line, mark.Column), msg, from, to}
}

// bareWordRE matches a line holding one plain word and nothing else.
var bareWordRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// blockScalarRE matches a key whose value is a block scalar: "key: |".
var blockScalarRE = regexp.MustCompile(`:[ \t]+[|>][-+0-9]*[ \t]*(#.*)?$`)

// blockScalarAbove reports whether the line above n opens a block scalar.
func blockScalarAbove(s source, n int) bool {
	p, ok := s.above(n)
	if !ok {
		return false
	}
	key, _, _ := value3(s.line(p))
	return key != "" && blockScalarRE.MatchString(s.line(p))
}

// dashRE matches a line starting with "-" glued to a key: "  -name: a".
var dashRE = regexp.MustCompile(`^[ ]*-[A-Za-z_]`)

// innerQuoteAdvice says how to write quote q inside a value.
func innerQuoteAdvice(q byte) string {
	if q == '"' {
		return `write a " inside a double-quoted value as \", or quote the value with ' instead`
	}
	return `write a ' inside a single-quoted value as '', or quote the value with " instead`
}

// noSpaceRE matches a plain key followed by ':' and no space.
var noSpaceRE = regexp.MustCompile(`^[-\s]*([A-Za-z0-9_.-]+:)[^\s:/]`)

// above is the closest line before n that holds something other than a
// comment.
func (s source) above(n int) (int, bool) {
	for p := n - 1; p >= 1; p-- {
		if t := strings.TrimSpace(s.line(p)); t != "" && !strings.HasPrefix(t, "#") {
			return p, true
		}
	}
	return 0, false
}

// unclosedQuote finds, at or above line n, a value that opens a quote and
// does not close it on its line, when that quote runs on to line n or
// closes just before it: the likely cause of the error at line n.
func unclosedQuote(s source, n int) (diag, bool) {
	for p := n; p >= 1; p-- {
		l := s.line(p)
		_, at := value(l)
		if at >= len(l) || (l[at] != '"' && l[at] != '\'') || quoted(l, at) >= 0 {
			continue
		}
		// Where does the parser close it?
		end := len(s) + 1
		for q := p + 1; q <= len(s); q++ {
			ql := s.line(q)
			if i := quoted(string(l[at])+ql, 0); i >= 0 {
				end = q
				break
			}
		}
		if n > end+1 {
			return diag{}, false
		}
		from, to := s.only(p)
		return diag{s.at(p, column(l, at)), fmt.Sprintf("the quote %c opened here is not closed on this line: end the value with %c", l[at], l[at]), from, to}, true
	}
	return diag{}, false
}
