package config

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/internal/strictyaml"
	"github.com/assertd/assertd/remediations"
)

// The committed schema files are what the Go types generate today.
func TestSchemaCurrent(t *testing.T) {
	for file, gen := range map[string]func() ([]byte, error){
		"../schema/rules.schema.json":  RulesSchema,
		"../schema/config.schema.json": ConfigSchema,
	} {
		got, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		golden(t, file, got)
	}
}

// The hand-written schemas of the two-shape types list exactly the keys their
// mapping form accepts.
func TestSchemaMappedTypesMatchDecoder(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[remediations.Verify](), reflect.TypeFor[remediations.Value](), reflect.TypeFor[asserts.Schedule]()} {
		s := mapType(typ)
		var obj map[string]any
		raw, _ := json.Marshal(s.OneOf[1])
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range obj["properties"].(map[string]any) {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := strictyaml.Keys(typ); !slices.Equal(keys, want) {
			t.Errorf("%s: schema keys %v, decoder keys %v", typ, keys, want)
		}
	}
}
