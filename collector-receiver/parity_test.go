package ebpfreceiver

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otel-ebpf-receiver/otel-ebpf-receiver/collector-receiver/internal/native"
)

// libraryKeys are the library's configuration keys, by key.
func libraryKeys(t *testing.T) map[string]native.ConfigKey {
	keys, err := native.ConfigKeys()
	require.NoError(t, err)
	out := map[string]native.ConfigKey{}
	for _, k := range keys {
		out[k.Key] = k
	}
	return out
}

// goType is how the library names the type of a Config field.
func goType(t reflect.Type) string {
	if t == durationType {
		return "integer"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Pointer:
		return goType(t.Elem()) + " or null"
	case reflect.Slice:
		switch goType(t.Elem()) {
		case "integer":
			return "list of integers"
		case "string":
			return "list of strings"
		default:
			return "list of objects"
		}
	case reflect.Map:
		return "object"
	}
	return t.String()
}

// Every library key is a collector key (but those the receiver sets from its
// pipelines) and the other way round (but the collector's own shorthands),
// with the same type; durations are the library's `_ms` keys; and the
// collector's defaults, as the library receives them, are the library's.
func TestConfigParity(t *testing.T) {
	lib := libraryKeys(t)
	goKeys := map[string]leafKey{}
	for _, k := range configLeaves() {
		if k.goOnly {
			assert.Contains(t, goOnlyKeys, k.goKey, "a `library:\"-\"` field needs its line in goOnlyKeys")
			continue
		}
		goKeys[k.libKey] = k
	}
	var libraryOnly, collectorOnly []string
	for key := range lib {
		if _, ok := goKeys[key]; !ok && !receiverSetKeys[key] {
			libraryOnly = append(libraryOnly, key)
		}
	}
	for key, k := range goKeys {
		if _, ok := lib[key]; !ok {
			collectorOnly = append(collectorOnly, k.goKey)
		}
	}
	assert.Empty(t, libraryOnly, "library keys the collector's Config cannot set: add them to config.go")
	assert.Empty(t, collectorOnly, "Config keys the library does not know (a duration `foo` is the library's `foo_ms`)")
	for key := range receiverSetKeys {
		assert.Contains(t, lib, key, "receiverSetKeys names a key the library does not have")
		assert.NotContains(t, goKeys, key, "a key the receiver sets is not the user's")
	}
	for key, k := range goKeys {
		l, ok := lib[key]
		if !ok {
			continue
		}
		assert.Equal(t, l.Type, goType(k.typ), "type of %s", k.goKey)
		assert.Equal(t, l.Unit == "ms", k.typ == durationType, "%s: a library key in ms is a time.Duration, and only it", k.goKey)
	}

	defaults, err := native.ConfigDefaults()
	require.NoError(t, err)
	ours, err := validConfig().libraryJSON(true, true)
	require.NoError(t, err)
	assert.JSONEq(t, string(defaults), string(ours), "createDefaultConfig, as the library receives it, is the library's default")
}

// The done-check of the single source of truth: config.go states no number
// of its own (defaults and limits are the library's).
func TestConfigGoHasNoLimitsOrDefaults(t *testing.T) {
	src, err := os.ReadFile("config.go")
	require.NoError(t, err)
	for i, line := range strings.Split(string(src), "\n") {
		code, _, _ := strings.Cut(line, "//")
		// Words, so that names with a digit (`HTTP1`, "http1") are not numbers.
		isWord := func(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
		for _, word := range strings.FieldsFunc(code, func(r rune) bool { return !isWord(r) }) {
			if unicode.IsDigit(rune(word[0])) {
				assert.Fail(t, "a number in config.go", "line %d: %q (%s)", i+1, strings.TrimSpace(line), word)
			}
		}
	}
}

func formatNumber(v any) string {
	switch n := v.(type) {
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	case json.Number:
		return n.String()
	}
	return fmt.Sprint(v)
}

// formatDuration writes a whole number of milliseconds the way users write
// durations: 5m, 1s, 100ms.
func formatDuration(ms float64) string {
	d := time.Duration(ms) * time.Millisecond
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d != 0 && d%u.unit == 0 {
			return fmt.Sprintf("%d%s", d/u.unit, u.name)
		}
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// accepted says in words what the library accepts for a key.
func accepted(k native.ConfigKey) string {
	value := func(v any) string {
		if k.Unit == "ms" {
			return formatDuration(v.(float64))
		}
		return formatNumber(v)
	}
	unit := ""
	if k.Unit != "" && k.Unit != "ms" {
		unit = " " + k.Unit
	}
	var parts []string
	switch {
	case k.Values != nil:
		var vs []string
		for _, v := range k.Values {
			vs = append(vs, fmt.Sprintf("`%v`", v))
		}
		parts = append(parts, strings.Join(vs, ", "))
	case k.Minimum != nil && k.Maximum != nil:
		parts = append(parts, fmt.Sprintf("%s to %s%s", value(k.Minimum), value(k.Maximum), unit))
	case k.Minimum != nil && formatNumber(k.Minimum) != "0":
		parts = append(parts, fmt.Sprintf("≥ %s%s", value(k.Minimum), unit))
	}
	if k.MaxItems != nil {
		parts = append(parts, fmt.Sprintf("at most %s entries", formatNumber(k.MaxItems)))
	}
	switch {
	case k.ItemMinimum != nil && k.ItemMaximum != nil:
		parts = append(parts, fmt.Sprintf("each %s to %s", formatNumber(k.ItemMinimum), formatNumber(k.ItemMaximum)))
	case k.ItemMinimum != nil:
		parts = append(parts, fmt.Sprintf("each ≥ %s", formatNumber(k.ItemMinimum)))
	}
	return strings.Join(parts, "; ")
}

func formatDefault(k native.ConfigKey) string {
	switch v := k.Default.(type) {
	case nil:
		return "none"
	case float64:
		if k.Unit == "ms" {
			return "`" + formatDuration(v) + "`"
		}
	}
	b, _ := json.Marshal(k.Default)
	return "`" + strings.Trim(string(b), `"`) + "`"
}

// configTable is the README's table of every collector key, from the
// library's key list and Config's shape.
func configTable(t *testing.T) string {
	lib := libraryKeys(t)
	type row struct{ key, typ, def, accepted, description string }
	var rows []row
	for _, k := range configLeaves() {
		if k.goOnly {
			rows = append(rows, row{k.goKey, goType(k.typ), "`[]`", "", goOnlyKeys[k.goKey]})
			continue
		}
		l := lib[k.libKey]
		typ := l.Type
		if k.typ == durationType {
			typ = "duration"
		}
		rows = append(rows, row{k.goKey, typ, formatDefault(l), accepted(l), l.Description})
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.key, b.key) })
	var b strings.Builder
	b.WriteString("| key | type | default | accepted | what it does |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", r.key, r.typ, r.def, r.accepted,
			strings.ReplaceAll(r.description, "|", `\|`))
	}
	var set []string
	for key := range receiverSetKeys {
		set = append(set, "`"+key+"`")
	}
	slices.Sort(set)
	fmt.Fprintf(&b, "\nThe library's %s are set by the receiver: a signal is computed only when a pipeline consumes it.\n",
		strings.Join(set, " and "))
	return b.String()
}

const (
	tableBegin = "<!-- BEGIN config table: generated from the library's schema by `make docs` -->\n"
	tableEnd   = "<!-- END config table -->"
)

// The READMEs document every key, as the library declares it:
// OTEL_EBPF_UPDATE_README=1 (`make docs`) rewrites their tables.
func TestREADMEConfigTable(t *testing.T) {
	want := configTable(t)
	for _, path := range []string{filepath.Join("..", "README.md"), "README.md"} {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		readme := string(b)
		start := strings.Index(readme, tableBegin)
		require.GreaterOrEqual(t, start, 0, "%s: no BEGIN marker of the config table", path)
		start += len(tableBegin)
		end := strings.Index(readme[start:], tableEnd)
		require.GreaterOrEqual(t, end, 0, "%s: no END marker of the config table", path)
		end += start
		if os.Getenv("OTEL_EBPF_UPDATE_README") != "" {
			require.NoError(t, os.WriteFile(path, []byte(readme[:start]+want+readme[end:]), 0o644))
			continue
		}
		assert.Equal(t, want, readme[start:end], "%s is out of date with the library's configuration: run `make docs`", path)
	}
}
