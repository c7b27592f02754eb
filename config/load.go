package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/internal/strictyaml"
	"github.com/assertd/assertd/remediations"
)

// RuleFile is an assert file: it may hold asserts, heartbeats and
// remediations (conventionally asserts in one file, remediations in another).
type RuleFile struct {
	Asserts      []asserts.Assert           `yaml:"asserts"`
	Heartbeats   []asserts.Heartbeat        `yaml:"heartbeats"`
	Remediations []remediations.Remediation `yaml:"remediations"`
}

// KeyHints explains keys that are not accepted at the top of a rule file.
func (*RuleFile) KeyHints() map[string]string {
	return map[string]string{
		"rules":  "write asserts:",
		"alerts": "write asserts:",
	}
}

// Set is everything loaded: the config (nil when rule files were checked on
// their own) and the compiled asserts, heartbeats and remediations.
type Set struct {
	ConfigPath   string
	Config       *Config
	Files        []string
	Asserts      []*asserts.Compiled
	Heartbeats   []*asserts.CompiledHeartbeat
	Remediations []*remediations.Compiled
	// PromRules are the Prometheus rule files (top-level groups:), and
	// Bindings the config's prometheus_rules.bindings.
	PromRules []*PromRuleFile
	Bindings  []*CompiledBinding
}

// Assert returns the assert with this name, or nil.
func (s *Set) Assert(name string) *asserts.Compiled {
	for _, a := range s.Asserts {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Remediation returns the remediation with this name, or nil.
func (s *Set) Remediation(name string) *remediations.Compiled {
	for _, r := range s.Remediations {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func readFile(path string) ([]byte, strictyaml.Errors) {
	var errs strictyaml.Errors
	f, err := os.Open(path)
	if err != nil {
		errs.Add(strictyaml.Pos{File: path}, "cannot read: %v", unwrapPathError(err))
		return nil, errs
	}
	defer f.Close()
	data := make([]byte, 0, 4096)
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		data = append(data, buf[:n]...)
		if len(data) > strictyaml.MaxBytes {
			errs.Add(strictyaml.Pos{File: path, Line: 1, Col: 1}, "file is larger than %d bytes: split it into several files", strictyaml.MaxBytes)
			return nil, errs
		}
		if err != nil {
			break
		}
	}
	return data, nil
}

func unwrapPathError(err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// LoadConfig reads and checks assertd.yaml on its own.
func LoadConfig(path string) (*Config, *strictyaml.Positions, strictyaml.Errors) {
	data, errs := readFile(path)
	if errs != nil {
		return nil, nil, errs
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes and checks assertd.yaml from data. A config that is
// not valid YAML is not read at all (nil): its syntax errors are all there
// is to say, not what an empty config would lack.
func ParseConfig(path string, data []byte) (*Config, *strictyaml.Positions, strictyaml.Errors) {
	doc, errs := strictyaml.Parse(path, data)
	if doc == nil {
		return nil, nil, errs
	}
	var c Config
	pos, derrs := strictyaml.DecodeNode(path, doc, &c)
	errs.Append(derrs)
	errs.Append(validate(&c, pos))
	return &c, pos, errs
}

// Load reads assertd.yaml and every file it lists, and checks them together.
func Load(path string) (*Set, strictyaml.Errors) {
	cfg, pos, errs := LoadConfig(path)
	if cfg == nil {
		return nil, errs
	}
	files, ferrs := ConfigFiles(path, cfg, pos)
	errs.Append(ferrs)
	set, serrs := LoadRules(path, cfg, pos, files)
	errs.Append(serrs)
	return set, errs.Sort()
}

// ConfigFiles expands the config's files: patterns, relative to its directory.
func ConfigFiles(path string, cfg *Config, pos *strictyaml.Positions) ([]string, strictyaml.Errors) {
	var errs strictyaml.Errors
	var files []string
	dir := filepath.Dir(path)
	for i, pat := range cfg.Files {
		full := pat
		if !filepath.IsAbs(pat) {
			full = filepath.Join(dir, pat)
		}
		matches, err := filepath.Glob(full)
		switch {
		case err != nil:
			errs.Add(pos.Of("files", i), "files: %q is not a valid pattern: %v", pat, err)
		case len(matches) == 0:
			errs.Add(pos.Of("files", i), "files: %q matches no file (looked for %s)", pat, full)
		}
		for _, m := range matches {
			if !slices.Contains(files, m) {
				files = append(files, m)
			}
		}
	}
	return files, errs
}

// LoadRules reads rule files and checks them, against the config when there
// is one (cfg may be nil: then the references to escalation policies and
// sources, which the config defines, are not checked).
func LoadRules(cfgPath string, cfg *Config, cfgPos *strictyaml.Positions, files []string) (*Set, strictyaml.Errors) {
	var errs strictyaml.Errors
	set := &Set{ConfigPath: cfgPath, Config: cfg, Files: files}
	def := asserts.DefaultDefaults
	if cfg != nil {
		if d := cfg.Defaults.Every.Std(); d > 0 {
			def.Every = d
		}
		if d := cfg.Defaults.UncertainFor.Std(); d > 0 {
			def.UncertainFor = d
		}
		if n := cfg.Defaults.MaxInstances; n > 0 {
			def.MaxInstances = n
		}
		if cfgPos.Has("defaults", "grace") {
			def.Grace = cfg.Defaults.Grace.Std()
		}
		for i := range cfg.Heartbeats {
			h := &cfg.Heartbeats[i]
			loc := cfgPos.In("heartbeats", i)
			h.Pos = loc.At()
			c, herrs := asserts.CompileHeartbeat(h, loc, def)
			errs.Append(herrs)
			set.Heartbeats = append(set.Heartbeats, c)
		}
	}
	for _, f := range files {
		data, rerrs := readFile(f)
		if rerrs != nil {
			errs.Append(rerrs)
			continue
		}
		errs.Append(set.addRules(f, data, def))
	}
	if cfg != nil {
		errs.Append(set.compileBindings(cfg, cfgPos, def))
	}
	errs.Append(crossCheck(set, cfgPos))
	errs.Append(checkPromRules(set))
	return set, errs.Sort()
}

// addRules decodes and compiles one rule file into the set.
func (s *Set) addRules(file string, data []byte, def asserts.Defaults) strictyaml.Errors {
	if isPromRuleFile(data) {
		return s.addPromRules(file, data)
	}
	var rf RuleFile
	pos, errs := strictyaml.Decode(file, data, &rf)
	if len(rf.Asserts)+len(rf.Heartbeats)+len(rf.Remediations) == 0 && len(errs) == 0 {
		errs.Add(strictyaml.Pos{File: file, Line: 1, Col: 1}, "file holds no asserts, heartbeats or remediations (a Prometheus rule file has a top-level groups:)")
	}
	for i := range rf.Asserts {
		a := &rf.Asserts[i]
		loc := pos.In("asserts", i)
		a.Pos = loc.At()
		c, aerrs := asserts.Compile(a, loc, def)
		errs.Append(aerrs)
		s.Asserts = append(s.Asserts, c)
	}
	for i := range rf.Heartbeats {
		h := &rf.Heartbeats[i]
		loc := pos.In("heartbeats", i)
		h.Pos = loc.At()
		c, herrs := asserts.CompileHeartbeat(h, loc, def)
		errs.Append(herrs)
		s.Heartbeats = append(s.Heartbeats, c)
	}
	for i := range rf.Remediations {
		r := &rf.Remediations[i]
		loc := pos.In("remediations", i)
		r.Pos = loc.At()
		c, rerrs := remediations.Compile(r, loc)
		errs.Append(rerrs)
		s.Remediations = append(s.Remediations, c)
	}
	return errs
}

// ParseRules decodes, compiles and cross-checks one rule file given as
// bytes, on its own (no config).
func ParseRules(file string, data []byte) (*Set, strictyaml.Errors) {
	set := &Set{Files: []string{file}}
	errs := set.addRules(file, data, asserts.DefaultDefaults)
	errs.Append(crossCheck(set, nil))
	return set, errs.Sort()
}

func firstAt(kind, name string, p fmt.Stringer) string {
	return fmt.Sprintf("duplicate %s name %q (first defined at %s): names must be unique across all files", kind, name, p)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(word, "y"))
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Dir is the directory of the config file, against which its relative paths
// are resolved.
func (s *Set) Dir() string {
	if s.ConfigPath == "" {
		return "."
	}
	return filepath.Dir(s.ConfigPath)
}

// DataDir is where the embedded store and TSDB keep their files: data_dir,
// relative to the config file, by default "data" beside it.
func (s *Set) DataDir() string {
	d := "data"
	if s.Config != nil && s.Config.DataDir != "" {
		d = s.Config.DataDir
	}
	if filepath.IsAbs(d) {
		return d
	}
	return filepath.Join(s.Dir(), d)
}

// SourceName is the source an assert reads: its own, or the default.
func (s *Set) SourceName(a *asserts.Compiled) string {
	switch {
	case a.Source != "":
		return a.Source
	case s.Config != nil && s.Config.Sources.Default != "":
		return s.Config.Sources.Default
	}
	return EmbeddedName
}
