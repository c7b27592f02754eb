package config

import (
	"encoding/json"
	"reflect"

	"github.com/invopop/jsonschema"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/remediations"
)

// Schema IDs of the committed schema files.
const (
	RulesSchemaID  = "https://assertd.dev/schema/rules.schema.json"
	ConfigSchemaID = "https://assertd.dev/schema/config.schema.json"
)

// RulesSchema returns the JSON Schema of rule files (asserts, heartbeats,
// remediations), generated from the Go types so that editors complete and
// validate what the loader accepts.
func RulesSchema() ([]byte, error) { return schemaOf(&RuleFile{}, RulesSchemaID, "assertd rule file") }

// ConfigSchema returns the JSON Schema of assertd.yaml.
func ConfigSchema() ([]byte, error) { return schemaOf(&Config{}, ConfigSchemaID, "assertd.yaml") }

func schemaOf(v any, id, title string) ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		Mapper:                     mapType,
		DoNotReference:             false,
	}
	s := r.Reflect(v)
	// Keys starting with x- are ignored by the loader (a place for anchors).
	for _, d := range s.Definitions {
		if d.Type == "object" && d.Properties != nil {
			d.PatternProperties = map[string]*jsonschema.Schema{"^x-": {}}
		}
	}
	s.ID = jsonschema.ID(id)
	s.Title = title
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func str(desc string) *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Description: desc}
}

func object(desc string, required []string, props ...any) *jsonschema.Schema {
	p := jsonschema.NewProperties()
	for i := 0; i+1 < len(props); i += 2 {
		p.Set(props[i].(string), props[i+1].(*jsonschema.Schema))
	}
	return &jsonschema.Schema{Type: "object", Description: desc, Properties: p, Required: required, AdditionalProperties: jsonschema.FalseSchema}
}

// mapType describes the types that decode from more than one YAML shape.
func mapType(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[assertd.Duration]():
		return &jsonschema.Schema{Type: "string", Pattern: `^(([0-9]+)(y|w|d|h|m|s|ms))+$`, Description: "A duration such as 30s, 5m, 1h30m, 1d."}
	case reflect.TypeFor[asserts.Schedule]():
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
			str("Cron schedule: five fields (CRON_TZ=Zone prefix allowed), or @daily, @every 10m."),
			object("A cron schedule or a systemd calendar event, in a zone.", nil,
				"cron", str("Cron schedule: five fields, or @daily, @every 10m."),
				"on_calendar", str("systemd calendar event, such as 'Mon..Fri *-*-* 02:00:00'."),
				"tz", str("IANA time zone, such as Europe/Berlin (default: assertd's local zone).")),
		}}
	case reflect.TypeFor[remediations.Verify]():
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
			str("Name of the assert re-evaluated for this instance."),
			object("", nil, "assert", str("Name of the assert."), "expr", str("Expression over the triggering assert's fresh values.")),
		}}
	case reflect.TypeFor[remediations.Value]():
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
			str("A literal value (a template)."),
			object("A secret by reference.", nil,
				"value", str("A literal value."),
				"secret_env", str("Environment variable holding the secret."),
				"secret_file", str("File holding the secret."),
				"prefix", str("Text before the secret, such as 'Bearer '.")),
		}}
	}
	return nil
}
