package ebpfreceiver // import "github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver"

// The generic conversion between Config and the library's JSON
// configuration. Keys are the mapstructure tags, nested as the structs are;
// a time.Duration field `foo` is the library's `foo_ms`, in whole
// milliseconds; a field tagged `library:"-"` is the collector's own.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/native"
)

const msSuffix = "_ms"

var durationType = reflect.TypeFor[time.Duration]()

// keyField is a field of a config struct that is a configuration key.
type keyField struct {
	index  int
	goKey  string // its mapstructure tag
	libKey string // the library's key: goKey, or goKey + "_ms" for a duration
	typ    reflect.Type
	goOnly bool
}

func keyFields(t reflect.Type) []keyField {
	var out []keyField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		lib := name
		if f.Type == durationType {
			lib += msSuffix
		}
		out = append(out, keyField{index: i, goKey: name, libKey: lib, typ: f.Type, goOnly: f.Tag.Get("library") == "-"})
	}
	return out
}

// leafKey is one leaf of the configuration: nested structs are walked into,
// everything else (lists included) is a leaf.
type leafKey struct {
	goKey, libKey string // dotted paths
	typ           reflect.Type
	goOnly        bool
	value         reflect.Value // when walking a value
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// leaves lists the leaf keys of v's type (and their values, when v is valid).
func leaves(t reflect.Type, v reflect.Value) []leafKey {
	var out []leafKey
	var walk func(t reflect.Type, v reflect.Value, goPrefix, libPrefix string)
	walk = func(t reflect.Type, v reflect.Value, goPrefix, libPrefix string) {
		for _, f := range keyFields(t) {
			goKey, libKey := join(goPrefix, f.goKey), join(libPrefix, f.libKey)
			var fv reflect.Value
			if v.IsValid() {
				fv = v.Field(f.index)
			}
			if f.typ.Kind() == reflect.Struct && f.typ != durationType {
				walk(f.typ, fv, goKey, libKey)
				continue
			}
			out = append(out, leafKey{goKey: goKey, libKey: libKey, typ: f.typ, goOnly: f.goOnly, value: fv})
		}
	}
	walk(t, v, "", "")
	return out
}

// configLeaves are the leaf keys of Config.
var configLeaves = sync.OnceValue(func() []leafKey { return leaves(reflect.TypeFor[Config](), reflect.Value{}) })

// collectorKey names a library key the way the collector's configuration
// does: `batch.timeout_ms` is `batch.timeout`; `selection.include.pids[3]`
// stays.
func collectorKey(libKey string) string {
	base, rest := libKey, ""
	if i := strings.IndexByte(libKey, '['); i >= 0 {
		base, rest = libKey[:i], libKey[i:]
	}
	for _, k := range configLeaves() {
		if k.libKey == base {
			return k.goKey + rest
		}
	}
	return libKey
}

type durationKey struct {
	key   string
	value time.Duration
}

func durations(cfg *Config) []durationKey {
	var out []durationKey
	for _, k := range leaves(reflect.TypeFor[Config](), reflect.ValueOf(cfg).Elem()) {
		if k.typ == durationType {
			out = append(out, durationKey{k.goKey, time.Duration(k.value.Int())})
		}
	}
	return out
}

// toLibrary renders a config value as the library's JSON value. Lists are
// never null: the library wants arrays.
func toLibrary(v reflect.Value) any {
	if v.Type() == durationType {
		return time.Duration(v.Int()).Milliseconds()
	}
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		for _, f := range keyFields(v.Type()) {
			if !f.goOnly {
				m[f.libKey] = toLibrary(v.Field(f.index))
			}
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toLibrary(v.Index(i))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return toLibrary(v.Elem())
	default:
		return v.Interface()
	}
}

// libraryJSON renders the configuration for the library; traces and metrics
// say which signals some pipeline consumes (the others are not computed).
func (cfg *Config) libraryJSON(traces, metrics bool) ([]byte, error) {
	m := toLibrary(reflect.ValueOf(*cfg)).(map[string]any)
	exclude := m["selection"].(map[string]any)["exclude"].(map[string]any)
	exclude["pids"] = append(exclude["pids"].([]any), toLibrary(reflect.ValueOf(cfg.ExcludePIDs)).([]any)...)
	m["traces"].(map[string]any)["enabled"] = traces
	m["metrics"].(map[string]any)["enabled"] = metrics
	return json.Marshal(m)
}

// fromLibrary turns a library JSON value (numbers as json.Number) into what
// confmap decodes into a field of type t. Empty lists and nulls are left
// out: the field stays nil.
func fromLibrary(lib any, t reflect.Type) (any, error) {
	if t == durationType {
		n, ok := lib.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%v is not a number of milliseconds", lib)
		}
		ms, err := n.Int64()
		return time.Duration(ms) * time.Millisecond, err
	}
	switch t.Kind() {
	case reflect.Struct:
		libMap, ok := lib.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an object", lib)
		}
		out := map[string]any{}
		for _, f := range keyFields(t) {
			v, ok := libMap[f.libKey]
			if f.goOnly || !ok {
				continue
			}
			goValue, err := fromLibrary(v, f.typ)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.libKey, err)
			}
			if goValue != nil {
				out[f.goKey] = goValue
			}
		}
		return out, nil
	case reflect.Slice:
		list, ok := lib.([]any)
		if !ok || len(list) == 0 {
			return nil, nil
		}
		out := make([]any, len(list))
		for i, item := range list {
			v, err := fromLibrary(item, t.Elem())
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case reflect.Pointer:
		if lib == nil {
			return nil, nil
		}
		return fromLibrary(lib, t.Elem())
	}
	if n, ok := lib.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i, nil
		}
		return n.Float64()
	}
	return lib, nil
}

// defaultConfig decodes the library's defaults into a Config, the way the
// collector decodes its YAML.
func defaultConfig() (*Config, error) {
	b, err := native.ConfigDefaults()
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var lib map[string]any
	if err := dec.Decode(&lib); err != nil {
		return nil, err
	}
	m, err := fromLibrary(lib, reflect.TypeFor[Config]())
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	if err := confmap.NewFromStringMap(m.(map[string]any)).Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}
