package strictyaml

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// ExtensionPrefix starts keys that are ignored everywhere, so that a file can
// hold YAML anchors to reuse: x-defaults: &defaults {every: 15s}.
const ExtensionPrefix = "x-"

// MaxBytes bounds the size of one document; larger input is refused unread.
const MaxBytes = 8 << 20

const (
	maxNodes = 1_000_000 // alias expansion budget ("billion laughs")
	maxDepth = 64
)

// Unmarshaler is implemented by types that decode themselves from a node, for
// example a value that may be written as a string or as a mapping. Problems
// are reported through d.Errorf so that decoding goes on.
type Unmarshaler interface {
	UnmarshalStrict(d *Decoder, n *yaml.Node)
}

// KeyHinter is implemented by struct types that know what a user probably
// meant by a key they do not accept (`command` → "write run: [argv…]").
type KeyHinter interface {
	KeyHints() map[string]string
}

// Decoder walks a YAML node tree into Go values. It is only used through
// Decode and by Unmarshaler implementations.
type Decoder struct {
	file   string
	errs   Errors
	pos    map[string]Pos
	path   []string
	bad    map[string]bool
	budget int
	depth  int
}

// Positions maps a path in the document, such as asserts.3.expect, to where
// its value stands in the file.
type Positions struct {
	file string
	m    map[string]Pos
	bad  map[string]bool // values that did not decode
}

// PathKey joins path elements (strings and ints) into a key for Positions.
func PathKey(path ...any) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprint(&b, p)
	}
	return b.String()
}

// Of returns where the value at path stands. When the path itself is absent
// (the user left the key out) it returns the position of the closest parent,
// which is where the missing key belongs.
func (p *Positions) Of(path ...any) Pos {
	if p == nil {
		return Pos{}
	}
	for n := len(path); n >= 0; n-- {
		if pos, ok := p.m[PathKey(path[:n]...)]; ok {
			return pos
		}
	}
	return Pos{File: p.file, Line: 1, Col: 1}
}

// Has reports whether the document set the value at path, and it decoded:
// checks of explicitly set values then skip values already reported.
func (p *Positions) Has(path ...any) bool {
	if p == nil {
		return false
	}
	k := PathKey(path...)
	_, ok := p.m[k]
	return ok && !p.bad[k]
}

// File is the name the positions refer to.
func (p *Positions) File() string { return p.file }

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// Parse reads one YAML document into a node tree, reporting syntax errors
// with their position.
func Parse(file string, data []byte) (*yaml.Node, Errors) {
	var errs Errors
	if len(data) > MaxBytes {
		errs.Add(Pos{File: file, Line: 1, Col: 1}, "file is %d bytes; the limit is %d: split it into several files", len(data), MaxBytes)
		return nil, errs
	}
	docs, err := parseAll(data)
	if err != nil {
		return nil, syntaxErrors(file, data, err)
	}
	if len(docs) == 0 {
		return &yaml.Node{Kind: yaml.DocumentNode}, nil
	}
	if len(docs) > 1 {
		next := docs[1]
		errs.Add(Pos{File: file, Line: next.Line, Col: next.Column}, "a second YAML document (after ---) is not supported: put it in a file of its own")
	}
	return docs[0], errs
}

func syntaxMsg(err error) string {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		return m[2]
	}
	return err.Error()
}

// Decode parses data and decodes it into v, a pointer to a struct. It returns
// where every value stands and every problem found; v holds whatever could be
// decoded even when there are errors.
func Decode(file string, data []byte, v any) (*Positions, Errors) {
	doc, errs := Parse(file, data)
	if doc == nil {
		return &Positions{file: file, m: map[string]Pos{}, bad: map[string]bool{}}, errs
	}
	p, derrs := DecodeNode(file, doc, v)
	errs.Append(derrs)
	return p, errs
}

// DecodeNode decodes an already parsed document into v.
func DecodeNode(file string, doc *yaml.Node, v any) (*Positions, Errors) {
	d := &Decoder{file: file, pos: map[string]Pos{}, bad: map[string]bool{}, budget: maxNodes}
	n := doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return &Positions{file: file, m: d.pos, bad: d.bad}, nil
		}
		n = n.Content[0]
	}
	d.Decode(n, v)
	return &Positions{file: file, m: d.pos, bad: d.bad}, d.errs
}

// Pos returns where n stands.
func (d *Decoder) Pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

// Errorf records a problem at n, the value being decoded.
func (d *Decoder) Errorf(n *yaml.Node, format string, args ...any) {
	d.bad[strings.Join(d.path, ".")] = true
	d.errs.Add(d.Pos(n), format, args...)
}

// Decode decodes n into v (a pointer) at the current path.
func (d *Decoder) Decode(n *yaml.Node, v any) {
	d.value(n, reflect.ValueOf(v).Elem())
}

// DecodeField decodes n into v (a pointer) under the key name of the current
// path, so that its position can be found later.
func (d *Decoder) DecodeField(name string, n *yaml.Node, v any) {
	d.path = append(d.path, name)
	d.Decode(n, v)
	d.path = d.path[:len(d.path)-1]
}

// Resolve follows aliases.
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// KindName describes a node in the user's words.
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unsupported value"
}

// kindHint says what was probably meant when a value of the wrong kind is
// a common slip: an unquoted {{ template (a YAML mapping), or key:value
// with no space after the colon (one string).
func kindHint(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle != 0 && len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode:
		return `: a value starting with {{ is read as a YAML mapping; quote the whole value, such as "{{ .Labels.instance }} is down"`
	case n.Kind == yaml.ScalarNode && n.Style == 0:
		if m := noSpaceValueRE.FindStringSubmatch(n.Value); m != nil {
			return fmt.Sprintf(": a space is missing after ':'; write %s: %s", m[1], m[2])
		}
	}
	return ""
}

var noSpaceValueRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_.-]*):([^\s:/].*)$`)

var unmarshalerType = reflect.TypeFor[Unmarshaler]()

func (d *Decoder) value(n *yaml.Node, v reflect.Value) {
	n = Resolve(n)
	if n == nil || n.Kind == yaml.AliasNode {
		return
	}
	d.budget--
	if d.budget == 0 {
		d.Errorf(n, "document expands to too many values (aliases nested too deep): write it out plainly")
	}
	if d.budget <= 0 {
		return
	}
	if d.depth >= maxDepth {
		d.Errorf(n, "document nests deeper than %d levels", maxDepth)
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	d.pos[strings.Join(d.path, ".")] = d.Pos(n)

	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		v.Addr().Interface().(Unmarshaler).UnmarshalStrict(d, n)
		return
	}
	isNull := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	switch v.Kind() {
	case reflect.Pointer:
		if isNull {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem())
	case reflect.Struct:
		if isNull {
			return
		}
		d.structure(n, v)
	case reflect.Map:
		if isNull {
			return
		}
		d.mapping(n, v)
	case reflect.Slice:
		if isNull {
			return
		}
		d.sequence(n, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.Errorf(n, "expected a string, got %s%s", KindName(n), kindHint(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || err != nil {
			d.Errorf(n, "expected true or false, got %s", KindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if n.Kind != yaml.ScalarNode || err != nil || v.OverflowInt(i) {
			d.Errorf(n, "expected a whole number, got %s", KindName(n))
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.Errorf(n, "expected a number, got %s", KindName(n))
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.Errorf(n, "cannot read value: %s", syntaxMsg(err))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.Errorf(n, "unsupported value")
	}
}

// Pairs returns the key/value pairs of a mapping node, with merge keys (<<)
// expanded (keys written in the mapping win over merged ones) and duplicate
// keys reported.
func (d *Decoder) Pairs(n *yaml.Node) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var out, merged [][2]*yaml.Node
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.Tag == "!!merge":
			src := Resolve(val)
			if src == nil || src.Kind != yaml.MappingNode {
				d.Errorf(k, "merge key << takes one mapping (an alias such as *defaults)")
				continue
			}
			for j := 0; j+1 < len(src.Content); j += 2 {
				if mk := src.Content[j]; mk.Kind == yaml.ScalarNode && mk.Tag != "!!merge" {
					merged = append(merged, [2]*yaml.Node{mk, src.Content[j+1]})
				}
			}
		case k.Kind != yaml.ScalarNode:
			d.Errorf(k, "a key must be a plain string, got %s", KindName(k))
		default:
			if first, dup := seen[k.Value]; dup {
				d.Errorf(k, "duplicate key %q (first set at line %d): keep one", k.Value, first.Line)
				continue
			}
			seen[k.Value] = k
			out = append(out, [2]*yaml.Node{k, val})
		}
	}
	for _, kv := range merged {
		if _, ok := seen[kv[0].Value]; !ok {
			seen[kv[0].Value] = kv[0]
			out = append(out, kv)
		}
	}
	return out
}

func (d *Decoder) mapping(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "expected a mapping (key: value), got %s%s", KindName(n), kindHint(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.Errorf(n, "unsupported mapping")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, kv := range d.Pairs(n) {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.path = append(d.path, kv[0].Value)
		d.value(kv[1], elem)
		d.path = d.path[:len(d.path)-1]
		v.SetMapIndex(reflect.ValueOf(kv[0].Value).Convert(v.Type().Key()), elem)
	}
}

func (d *Decoder) sequence(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, "expected a list, got %s: write it as [a, b] or one \"- item\" per line", KindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.path = append(d.path, strconv.Itoa(i))
		d.value(item, s.Index(i))
		d.path = d.path[:len(d.path)-1]
	}
	v.Set(s)
}

type fieldInfo struct {
	names []string       // accepted keys, in declaration order
	index map[string]int // key → field index
}

var fieldCache sync.Map // reflect.Type → *fieldInfo

func fields(t reflect.Type) *fieldInfo {
	if fi, ok := fieldCache.Load(t); ok {
		return fi.(*fieldInfo)
	}
	fi := &fieldInfo{index: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fi.names = append(fi.names, name)
		fi.index[name] = i
	}
	fieldCache.Store(t, fi)
	return fi
}

// Keys returns the keys a struct type accepts, sorted.
func Keys(t reflect.Type) []string {
	names := append([]string(nil), fields(t).names...)
	sort.Strings(names)
	return names
}

func (d *Decoder) structure(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "expected a mapping (key: value), got %s%s", KindName(n), kindHint(n))
		return
	}
	fi := fields(v.Type())
	var hints map[string]string
	if h, ok := v.Addr().Interface().(KeyHinter); ok {
		hints = h.KeyHints()
	}
	for _, kv := range d.Pairs(n) {
		k := kv[0]
		i, ok := fi.index[k.Value]
		if !ok && strings.HasPrefix(k.Value, ExtensionPrefix) {
			continue // a place for anchors: x-defaults: &defaults {...}
		}
		if !ok {
			d.unknownKey(k, fi.names, hints)
			continue
		}
		d.path = append(d.path, k.Value)
		d.value(kv[1], v.Field(i))
		d.path = d.path[:len(d.path)-1]
	}
}

func (d *Decoder) unknownKey(k *yaml.Node, names []string, hints map[string]string) {
	if h, ok := hints[k.Value]; ok {
		d.errs.Add(d.Pos(k), "unknown key %q: %s", k.Value, h)
		return
	}
	if s := DidYouMean(k.Value, names); s != "" {
		d.errs.Add(d.Pos(k), "unknown key %q%s", k.Value, s)
		return
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	d.errs.Add(d.Pos(k), "unknown key %q; the keys here are: %s", k.Value, strings.Join(sorted, ", "))
}

// Loc finds positions below a prefix path, such as the third assert of a file.
type Loc struct {
	P      *Positions
	Prefix []any
}

// In returns the positions of the document at prefix.
func (p *Positions) In(prefix ...any) Loc { return Loc{P: p, Prefix: prefix} }

func (l Loc) full(path []any) []any {
	return append(append(make([]any, 0, len(l.Prefix)+len(path)), l.Prefix...), path...)
}

// At returns where the value at path (below the prefix) stands, or where it
// belongs when it is absent.
func (l Loc) At(path ...any) Pos { return l.P.Of(l.full(path)...) }

// Has reports whether the document set the value at path.
func (l Loc) Has(path ...any) bool { return l.P.Has(l.full(path)...) }

// In returns a Loc further below.
func (l Loc) In(path ...any) Loc { return Loc{P: l.P, Prefix: l.full(path)} }
