package config

import (
	"bytes"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// yamlTopKeys returns the keys of a YAML document's top-level mapping, nil
// when it is not one. A block mapping's keys are read off the lines that
// start in the first column, without parsing the whole file (a rule file
// of a thousand rules is otherwise parsed once more just to learn its
// kind); anything else — flow style, several documents, anchors, tags,
// complex keys — is parsed.
func yamlTopKeys(data []byte) []string {
	if keys, ok := blockTopKeys(data); ok {
		return keys
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	top := doc.Content[0]
	var keys []string
	for i := 0; i+1 < len(top.Content); i += 2 {
		keys = append(keys, top.Content[i].Value)
	}
	return keys
}

// blockTopKeys reads the top-level keys of a plain block mapping, and
// false when the document is anything it does not read exactly.
func blockTopKeys(data []byte) ([]string, bool) {
	var keys []string
	started := false
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 || line[0] == ' ' || line[0] == '#' {
			continue // indented content, a comment or a blank line
		}
		if line[0] == '\t' {
			return nil, false
		}
		if bytes.Equal(line, []byte("---")) && !started {
			continue
		}
		key, ok := blockKey(line)
		if !ok {
			return nil, false
		}
		started = true
		keys = append(keys, key)
	}
	return keys, started
}

// blockKey reads `key:` or `key: value` (plain or double-quoted key).
func blockKey(line []byte) (string, bool) {
	if line[0] == '"' {
		end := bytes.Index(line[1:], []byte(`":`))
		if end < 0 {
			return "", false
		}
		k, err := strconv.Unquote(string(line[:end+2]))
		if err != nil {
			return "", false
		}
		rest := line[end+3:]
		return k, len(rest) == 0 || rest[0] == ' '
	}
	i := bytes.Index(line, []byte(":"))
	for i >= 0 && i+1 < len(line) && line[i+1] != ' ' {
		j := bytes.Index(line[i+1:], []byte(":"))
		if j < 0 {
			return "", false
		}
		i += 1 + j
	}
	if i <= 0 {
		return "", false
	}
	k := string(line[:i])
	if k[len(k)-1] == ' ' || k[len(k)-1] == '\t' {
		return "", false
	}
	for _, c := range k {
		switch c {
		case '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '?', '-', '#', '\t':
			return "", false // flow style, anchors, tags, complex or quoted keys: parse instead
		}
	}
	return k, true
}
