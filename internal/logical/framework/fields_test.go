package framework

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCoerceLenientLikeVault(t *testing.T) {
	cases := []struct {
		in   any
		typ  FieldType
		want any
	}{
		{json.Number("3600"), TypeDuration, time.Hour},
		{"3600", TypeDuration, time.Hour},
		{"1h30m", TypeDuration, 90 * time.Minute},
		{"2d", TypeDuration, 48 * time.Hour},
		{"a,b, c", TypeCommaStringSlice, []string{"a", "b", "c"}},
		{[]any{"a", "b,c"}, TypeCommaStringSlice, []string{"a", "b", "c"}},
		{"true", TypeBool, true},
		{[]any{"false"}, TypeBool, false},
		{json.Number("5"), TypeInt, 5},
		{"7", TypeInt, 7},
		{json.Number("12"), TypeString, "12"},
		{map[string]any{"a": json.Number("1"), "b": true}, TypeKVPairs, map[string]string{"a": "1", "b": "true"}},
	}
	for _, tc := range cases {
		got, err := coerce(tc.in, tc.typ)
		if err != nil {
			t.Errorf("coerce(%#v, %v): %v", tc.in, tc.typ, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("coerce(%#v, %v) = %#v, want %#v", tc.in, tc.typ, got, tc.want)
		}
	}
}

func TestCoerceRejects(t *testing.T) {
	cases := []struct {
		in  any
		typ FieldType
	}{
		{"forever", TypeDuration},
		{"many", TypeInt},
		{json.Number("1.5"), TypeInt},
		{"maybe", TypeBool},
		{map[string]any{}, TypeString},
		{"x", TypeMap},
		{[]any{map[string]any{}}, TypeCommaStringSlice},
	}
	for _, tc := range cases {
		if v, err := coerce(tc.in, tc.typ); err == nil {
			t.Errorf("coerce(%#v, %v) = %#v, want an error", tc.in, tc.typ, v)
		}
	}
}

func TestValidateNamesField(t *testing.T) {
	d := &FieldData{
		Raw:    map[string]any{"max_versions": "lots"},
		Schema: map[string]*FieldSchema{"max_versions": {Type: TypeInt}},
	}
	err := d.Validate()
	if err == nil || !strings.Contains(err.Error(), `"max_versions"`) {
		t.Fatalf("Validate() = %v, want an error naming the field", err)
	}
}
