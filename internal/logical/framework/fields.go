package framework

import (
	"encoding/json"
	"fmt"
	"github.com/arcasec/arca/internal/logical"
	"math"
	"strconv"
	"strings"
	"time"
)

// FieldType is the type of a declared field. Coercion is lenient in the
// ways Vault clients depend on: durations as seconds or Go duration strings,
// bools as "true", lists as arrays or comma-separated strings.
type FieldType int

const (
	TypeString FieldType = iota
	TypeInt
	TypeBool
	TypeDuration         // seconds as a number, "3600", or "1h30m"; a time.Duration
	TypeCommaStringSlice // ["a","b"] or "a,b"; a []string
	TypeStringSlice      // ["a","b"] or "a"; a []string
	TypeMap              // a JSON object; a map[string]any
	TypeKVPairs          // a JSON object of strings; a map[string]string
	TypeLowerCaseString  // a string, lower-cased
	TypeAny              // anything, unchanged
	TypeCommaIntSlice    // [1,2] or "1,2"; an []int
)

func (t FieldType) String() string {
	switch t {
	case TypeString, TypeLowerCaseString:
		return "string"
	case TypeInt:
		return "int"
	case TypeBool:
		return "bool"
	case TypeDuration:
		return "duration (seconds or a string like 1h)"
	case TypeCommaStringSlice, TypeStringSlice:
		return "list of strings"
	case TypeCommaIntSlice:
		return "list of integers"
	case TypeMap:
		return "object"
	case TypeKVPairs:
		return "object of strings"
	}
	return "any"
}

// FieldSchema declares one field.
type FieldSchema struct {
	Type        FieldType
	Default     any
	Description string
	Required    bool
}

// FieldData is a request's data checked against a path's fields.
type FieldData struct {
	Raw    map[string]any
	Schema map[string]*FieldSchema
}

// Validate checks every supplied field against its schema.
func (d *FieldData) Validate() error {
	for name, schema := range d.Schema {
		v, ok := d.Raw[name]
		if !ok {
			if schema.Required {
				return logical.BadRequest("missing required field %q", name)
			}
			continue
		}
		if _, err := coerce(v, schema.Type); err != nil {
			return logical.BadRequest("invalid value for field %q: %v", name, err)
		}
	}
	return nil
}

// GetOk returns the field's coerced value and whether the request set it.
// It panics on a name the path did not declare: that is a programming error.
func (d *FieldData) GetOk(name string) (any, bool) {
	schema, ok := d.Schema[name]
	if !ok {
		panic(fmt.Sprintf("logical: field %q is not declared", name))
	}
	raw, ok := d.Raw[name]
	if !ok {
		return zeroOrDefault(schema), false
	}
	v, err := coerce(raw, schema.Type)
	if err != nil { // validated already; unreachable
		return zeroOrDefault(schema), false
	}
	return v, true
}

// Get returns the field's coerced value, or its default.
func (d *FieldData) Get(name string) any {
	v, _ := d.GetOk(name)
	return v
}

// String, Int, Bool, Duration and Strings are typed shorthands for Get.
func (d *FieldData) String(name string) string { s, _ := d.Get(name).(string); return s }
func (d *FieldData) Int(name string) int       { i, _ := d.Get(name).(int); return i }
func (d *FieldData) Bool(name string) bool     { b, _ := d.Get(name).(bool); return b }
func (d *FieldData) Duration(name string) time.Duration {
	t, _ := d.Get(name).(time.Duration)
	return t
}
func (d *FieldData) Strings(name string) []string { s, _ := d.Get(name).([]string); return s }

func zeroOrDefault(s *FieldSchema) any {
	if s.Default != nil {
		if v, err := coerce(s.Default, s.Type); err == nil {
			return v
		}
		return s.Default
	}
	switch s.Type {
	case TypeString, TypeLowerCaseString:
		return ""
	case TypeInt:
		return 0
	case TypeBool:
		return false
	case TypeDuration:
		return time.Duration(0)
	case TypeCommaStringSlice, TypeStringSlice:
		return []string(nil)
	case TypeCommaIntSlice:
		return []int(nil)
	case TypeMap:
		return map[string]any(nil)
	case TypeKVPairs:
		return map[string]string(nil)
	}
	return nil
}

func coerce(v any, t FieldType) (any, error) {
	switch t {
	case TypeAny:
		return v, nil
	case TypeString:
		return coerceString(v)
	case TypeLowerCaseString:
		s, err := coerceString(v)
		return strings.ToLower(s), err
	case TypeInt:
		return coerceInt(v)
	case TypeBool:
		return coerceBool(v)
	case TypeDuration:
		return ParseDuration(v)
	case TypeCommaStringSlice:
		return coerceStrings(v, true)
	case TypeStringSlice:
		return coerceStrings(v, false)
	case TypeCommaIntSlice:
		ss, err := coerceStrings(v, true)
		if err != nil {
			return nil, err
		}
		out := make([]int, 0, len(ss))
		for _, s := range ss {
			i, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an integer", s)
			}
			out = append(out, i)
		}
		return out, nil
	case TypeMap:
		switch m := v.(type) {
		case map[string]any:
			return m, nil
		case nil:
			return map[string]any(nil), nil
		case string:
			if m == "" {
				return map[string]any(nil), nil
			}
			var out map[string]any
			if err := json.Unmarshal([]byte(m), &out); err != nil {
				return nil, fmt.Errorf("expected an object")
			}
			return out, nil
		}
		return nil, fmt.Errorf("expected an object, got %s", jsonKind(v))
	case TypeKVPairs:
		switch m := v.(type) {
		case map[string]any:
			out := make(map[string]string, len(m))
			for k, val := range m {
				s, err := coerceString(val)
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", k, err)
				}
				out[k] = s
			}
			return out, nil
		case map[string]string:
			return m, nil
		case nil:
			return map[string]string(nil), nil
		}
		return nil, fmt.Errorf("expected an object of strings, got %s", jsonKind(v))
	}
	return nil, fmt.Errorf("unknown field type %d", t)
}

func coerceString(v any) (string, error) {
	switch s := v.(type) {
	case string:
		return s, nil
	case json.Number:
		return s.String(), nil
	case bool:
		return strconv.FormatBool(s), nil
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64), nil
	case int:
		return strconv.Itoa(s), nil
	case nil:
		return "", nil
	case []any:
		if len(s) == 1 { // query parameters arrive as lists
			return coerceString(s[0])
		}
	}
	return "", fmt.Errorf("expected a string, got %s", jsonKind(v))
}

func coerceInt(v any) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return int(i), nil
		}
		f, err := n.Float64()
		if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
			return 0, fmt.Errorf("expected an integer, got %s", n)
		}
		return int(f), nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
			return 0, fmt.Errorf("expected an integer, got %v", n)
		}
		return int(n), nil
	case string:
		if n == "" {
			return 0, nil
		}
		i, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil {
			return 0, fmt.Errorf("expected an integer, got %q", n)
		}
		return i, nil
	case []any:
		if len(n) == 1 {
			return coerceInt(n[0])
		}
	}
	return 0, fmt.Errorf("expected an integer, got %s", jsonKind(v))
}

func coerceBool(v any) (bool, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		if b == "" {
			return false, nil
		}
		r, err := strconv.ParseBool(b)
		if err != nil {
			return false, fmt.Errorf("expected a boolean, got %q", b)
		}
		return r, nil
	case json.Number:
		return b.String() != "0", nil
	case []any:
		if len(b) == 1 {
			return coerceBool(b[0])
		}
	}
	return false, fmt.Errorf("expected a boolean, got %s", jsonKind(v))
}

func coerceStrings(v any, splitCommas bool) ([]string, error) {
	switch s := v.(type) {
	case nil:
		return nil, nil
	case string:
		if s == "" {
			return []string{}, nil
		}
		if !splitCommas {
			return []string{s}, nil
		}
		parts := strings.Split(s, ",")
		out := make([]string, 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	case []string:
		return s, nil
	case []any:
		out := make([]string, 0, len(s))
		for i, e := range s {
			str, err := coerceString(e)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			if splitCommas && strings.Contains(str, ",") {
				more, _ := coerceStrings(str, true)
				out = append(out, more...)
				continue
			}
			out = append(out, strings.TrimSpace(str))
		}
		return out, nil
	case json.Number:
		return []string{s.String()}, nil
	}
	return nil, fmt.Errorf("expected a list of strings, got %s", jsonKind(v))
}

// ParseDuration accepts what Vault accepts for a duration: a number of
// seconds (JSON number or numeric string) or a Go duration string, with "d"
// for days allowed.
func ParseDuration(v any) (time.Duration, error) {
	switch d := v.(type) {
	case time.Duration:
		return d, nil
	case int:
		return time.Duration(d) * time.Second, nil
	case int64:
		return time.Duration(d) * time.Second, nil
	case float64:
		return time.Duration(d * float64(time.Second)), nil
	case json.Number:
		if i, err := d.Int64(); err == nil {
			return time.Duration(i) * time.Second, nil
		}
		f, err := d.Float64()
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration", d.String())
		}
		return time.Duration(f * float64(time.Second)), nil
	case nil:
		return 0, nil
	case []any:
		if len(d) == 1 {
			return ParseDuration(d[0])
		}
	case string:
		s := strings.TrimSpace(d)
		if s == "" {
			return 0, nil
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Duration(i) * time.Second, nil
		}
		if strings.HasSuffix(s, "d") {
			if days, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil {
				return time.Duration(days) * 24 * time.Hour, nil
			}
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (use seconds or a string like 1h30m)", s)
		}
		return dur, nil
	}
	return 0, fmt.Errorf("expected a duration, got %s", jsonKind(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number, float64, int, int64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}
