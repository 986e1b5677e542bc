package template

import (
	"bytes"
	"crypto/md5" //nolint:gosec // md5sum is a checksum function templates ask for, not a security use.
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"reflect"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"
	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"

	"github.com/arcasec/arca/api"
)

// unsupported maps the consul-template functions Arca declines to the
// reason Parse gives.
var unsupported = func() map[string]string {
	m := map[string]string{
		"writeToFile":     "writeToFile is not supported: a template writes only its own destination",
		"executeTemplate": `executeTemplate is not supported: use {{ template "name" . }}`,
		"plugin":          "plugin is not supported: Arca agent runs no template plugins",
		"sockaddr":        "sockaddr is not supported by Arca agent",
		"pkiCert":         `pkiCert needs a PKI secrets engine, which Arca does not have; read certificates with {{ with secret "PATH" "common_name=..." }}`,
	}
	for _, f := range []string{"key", "keyExists", "keyOrDefault", "ls", "safeLs", "tree", "safeTree",
		"service", "services", "node", "nodes", "datacenters", "connect", "caLeaf", "caRoots",
		"byKey", "byTag", "byMeta", "explode", "explodeMap"} {
		m[f] = f + " is a Consul function; Arca agent serves Vault secrets only"
	}
	for _, f := range []string{"nomadService", "nomadServices", "nomadVar", "nomadVarList",
		"nomadVarListSafe", "nomadVarExists"} {
		m[f] = f + " is a Nomad function; Arca agent serves Vault secrets only"
	}
	return m
}()

// maxFile bounds what the file function reads.
const maxFile = 16 << 20

// now is the clock of timestamp; tests replace it.
var now = time.Now

// maxSeq bounds the elements one render's sequence functions (loop, split,
// sprig's until, seq, repeat and random strings) may produce in all.
const maxSeq = 1 << 20

var (
	baseOnce sync.Once
	baseMap  template.FuncMap
)

// baseFuncs is the stateless part of the function table: consul-template's
// helpers, sprig's under "sprig_", and the refusals of unsupported names.
// Parse adds a binder's functions over it.
func baseFuncs() template.FuncMap {
	baseOnce.Do(func() {
		m := template.FuncMap{}
		for k, v := range sprig.TxtFuncMap() {
			m["sprig_"+k] = v
		}
		for k := range unsupported {
			m[k] = func(...any) (string, error) { return "", ferr("%s", unsupported[k]) }
		}
		for k, v := range helperFuncs() {
			m[k] = v
		}
		baseMap = m
	})
	return baseMap
}

// run is the state of one Execute.
type run struct {
	src     Source
	memo    map[string]*api.Secret
	seen    map[string]struct{}
	scratch scratch
	seq     int
}

// take spends n of the run's sequence budget.
func (r *run) take(n int) error {
	if n < 0 || n > maxSeq || r.seq+n > maxSeq {
		return ferr("more than %d elements in one render", maxSeq)
	}
	r.seq += n
	return nil
}

// binder points the stateful functions of one parsed template at the run
// under way; Template.Execute sets it under the template's lock.
type binder struct {
	r *run
}

// funcs are the functions that need a run's state (its source, what it has
// read, its scratchpad and sequence budget), bound through b.
func (b *binder) funcs() template.FuncMap {
	return template.FuncMap{
		"secret":             func(path string, params ...string) (*api.Secret, error) { return b.r.secret(path, params...) },
		"secrets":            func(path string) ([]string, error) { return b.r.secrets(path) },
		"env":                func(name string) string { return b.r.env(name) },
		"mustEnv":            func(name string) (string, error) { return b.r.mustEnv(name) },
		"envOrDefault":       func(name, def string) string { return b.r.envOrDefault(name, def) },
		"file":               func(path string) (string, error) { return b.r.file(path) },
		"scratch":            func() *scratch { return &b.r.scratch },
		"base64Decode":       func(s string) (string, error) { return b.r.base64Decode(s) },
		"base64URLDecode":    func(s string) (string, error) { return b.r.base64URLDecode(s) },
		"parseJSON":          func(s string) (any, error) { return b.r.parseJSON(s) },
		"parseYAML":          func(s string) (any, error) { return b.r.parseYAML(s) },
		"loop":               func(ints ...int) ([]int, error) { return b.r.loop(ints...) },
		"split":              func(sep, s string) ([]string, error) { return b.r.split(sep, s) },
		"sprig_repeat":       func(count int, s string) (string, error) { return b.r.sprigRepeat(count, s) },
		"sprig_until":        func(count int) ([]int, error) { return b.r.sprigUntil(count) },
		"sprig_untilStep":    func(start, stop, step int) ([]int, error) { return b.r.sprigUntilStep(start, stop, step) },
		"sprig_seq":          func(params ...int) (string, error) { return b.r.sprigSeq(params...) },
		"sprig_randAlphaNum": func(n int) (string, error) { return b.r.sprigRand("randAlphaNum", n) },
		"sprig_randAlpha":    func(n int) (string, error) { return b.r.sprigRand("randAlpha", n) },
		"sprig_randAscii":    func(n int) (string, error) { return b.r.sprigRand("randAscii", n) },
		"sprig_randNumeric":  func(n int) (string, error) { return b.r.sprigRand("randNumeric", n) },
		"sprig_randBytes":    func(n int) (string, error) { return b.r.sprigRandBytes(n) },
	}
}

// secret reads path, or writes the "key=value" parameters to it.
func (r *run) secret(path string, params ...string) (*api.Secret, error) {
	var data map[string]any
	for _, p := range params {
		r.note(p) // a parameter may carry a secret (transit plaintext)
	}
	for i, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, ferr("secret %q: parameter %d is not key=value", path, i+1)
		}
		if data == nil {
			data = map[string]any{}
		}
		data[k] = v
	}
	if r.src == nil {
		return nil, ferr("secret %q: no secret source", path)
	}
	key := path
	if len(params) > 0 {
		sorted := append([]string(nil), params...)
		sort.Strings(sorted)
		key += "\x00" + strings.Join(sorted, "\x00")
	}
	if s, ok := r.memo[key]; ok {
		return s, nil
	}
	s, err := r.src.Secret(path, data)
	if err != nil {
		return nil, ferr("secret %q: %s", path, r.redact(err.Error()))
	}
	r.noteSecret(s)
	r.memo[key] = s
	return s, nil
}

// secrets lists the keys under path.
func (r *run) secrets(path string) ([]string, error) {
	if r.src == nil {
		return nil, ferr("secrets %q: no secret source", path)
	}
	keys, err := r.src.List(path)
	if err != nil {
		return nil, ferr("secrets %q: %s", path, r.redact(err.Error()))
	}
	return keys, nil
}

func (r *run) env(name string) string {
	v := os.Getenv(name)
	r.note(v)
	return v
}

func (r *run) mustEnv(name string) (string, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return "", ferr("environment variable %s is not set", name)
	}
	r.note(v)
	return v, nil
}

func (r *run) envOrDefault(name, def string) string {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	r.note(v)
	return v
}

// file returns the contents of a local file.
func (r *run) file(path string) (string, error) {
	fail := func(err error) (string, error) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", ferr("cannot read %s: %v", path, pe.Err)
		}
		return "", ferr("cannot read %s", path)
	}
	// A device or a FIFO could block the render or never end: only regular
	// files are read, up to maxFile.
	fi, err := os.Stat(path)
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return "", ferr("cannot read %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return fail(err)
	}
	if len(b) > maxFile {
		return "", ferr("cannot read %s: larger than %d MiB", path, maxFile>>20)
	}
	s := string(b)
	r.note(s)
	for _, line := range strings.Split(s, "\n") {
		r.note(strings.TrimSpace(line))
	}
	return s, nil
}

func (r *run) base64Decode(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", ferr("the value is not valid base64")
	}
	r.note(string(b))
	return string(b), nil
}

func (r *run) base64URLDecode(s string) (string, error) {
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		return "", ferr("the value is not valid URL-safe base64")
	}
	r.note(string(b))
	return string(b), nil
}

// parseJSON decodes s; "" is an empty object, as in consul-template.
func (r *run) parseJSON(s string) (any, error) {
	if s == "" {
		return map[string]any{}, nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, ferr("the value is not valid JSON (offset %d)", se.Offset)
		}
		return nil, ferr("the value is not valid JSON")
	}
	r.note(v)
	return v, nil
}

func (r *run) parseYAML(s string) (any, error) {
	if s == "" {
		return map[string]any{}, nil
	}
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, ferr("the value is not valid YAML")
	}
	r.note(v)
	return v, nil
}

// loop returns the integers [0, a) or [a, b).
func (r *run) loop(ints ...int) ([]int, error) {
	var start, stop int
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	default:
		return nil, ferr("loop takes one or two integers, got %d", len(ints))
	}
	if stop <= start {
		return []int{}, nil
	}
	if err := r.take(stop - start); err != nil {
		return nil, err
	}
	out := make([]int, 0, stop-start)
	for i := start; i < stop; i++ {
		out = append(out, i)
	}
	return out, nil
}

// split splits s on sep; "" gives no elements.
func (r *run) split(sep, s string) ([]string, error) {
	if s == "" {
		return []string{}, nil
	}
	n := strings.Count(s, sep) + 1
	if sep == "" {
		n = len(s)
	}
	if err := r.take(n); err != nil {
		return nil, err
	}
	return strings.Split(s, sep), nil
}

func (r *run) sprigRepeat(count int, s string) (string, error) {
	if count < 0 {
		return "", ferr("negative count")
	}
	if len(s) > 0 && count > MaxOutput/len(s) {
		return "", ferr("the result would exceed %d MiB", MaxOutput>>20)
	}
	return strings.Repeat(s, count), nil
}

func (r *run) sprigUntil(count int) ([]int, error) {
	n := count
	if n < 0 {
		n = -n
	}
	if err := r.take(n); err != nil {
		return nil, err
	}
	return sprig.TxtFuncMap()["until"].(func(int) []int)(count), nil
}

func stepCount(start, stop, step int) int {
	if step == 0 {
		return 0
	}
	n := (float64(stop) - float64(start)) / float64(step)
	if n < 0 {
		return 0
	}
	if n > maxSeq {
		return maxSeq + 1
	}
	return int(n) + 1
}

func (r *run) sprigUntilStep(start, stop, step int) ([]int, error) {
	if err := r.take(stepCount(start, stop, step)); err != nil {
		return nil, err
	}
	return sprig.TxtFuncMap()["untilStep"].(func(int, int, int) []int)(start, stop, step), nil
}

func (r *run) sprigSeq(params ...int) (string, error) {
	var n int
	switch len(params) {
	case 1:
		n = stepCount(1, params[0], 1) + stepCount(params[0], 1, -1)
	case 2:
		n = stepCount(params[0], params[1], 1) + stepCount(params[0], params[1], -1)
	case 3:
		n = stepCount(params[0], params[2], params[1])
	}
	if err := r.take(n); err != nil {
		return "", err
	}
	return sprig.TxtFuncMap()["seq"].(func(...int) string)(params...), nil
}

func (r *run) sprigRand(name string, count int) (string, error) {
	if err := r.take(count); err != nil {
		return "", err
	}
	return sprig.TxtFuncMap()[name].(func(int) string)(count), nil
}

func (r *run) sprigRandBytes(count int) (string, error) {
	if err := r.take(count); err != nil {
		return "", err
	}
	return sprig.TxtFuncMap()["randBytes"].(func(int) (string, error))(count)
}

// helperFuncs are consul-template's stateless helpers.
func helperFuncs() template.FuncMap {
	return template.FuncMap{
		"base64Encode":          func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"base64URLEncode":       func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) },
		"contains":              func(needle, haystack any) (bool, error) { return in(haystack, needle) },
		"in":                    in,
		"containsAll":           containsSome(true, true),
		"containsAny":           containsSome(false, false),
		"containsNone":          containsSome(true, false),
		"containsNotAll":        containsSome(false, true),
		"indent":                indent,
		"join":                  join,
		"trimSpace":             strings.TrimSpace,
		"trim":                  func(cutset, s string) string { return strings.Trim(s, cutset) },
		"trimPrefix":            func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix":            func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"parseBool":             parseBool,
		"parseFloat":            parseFloat,
		"parseInt":              parseInt,
		"parseUint":             parseUint,
		"regexMatch":            regexMatch,
		"regexReplaceAll":       regexReplaceAll,
		"replaceAll":            func(from, to, s string) string { return strings.ReplaceAll(s, from, to) },
		"sha256Hex":             func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"md5sum":                func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }, //nolint:gosec
		"timestamp":             timestamp,
		"toJSON":                func(v any) (string, error) { return toJSON(v, false, true) },
		"toJSONPretty":          func(v any) (string, error) { return toJSON(v, true, true) },
		"toUnescapedJSON":       func(v any) (string, error) { return toJSON(v, false, false) },
		"toUnescapedJSONPretty": func(v any) (string, error) { return toJSON(v, true, false) },
		"toLower":               strings.ToLower,
		"toUpper":               strings.ToUpper,
		"toTitle":               toTitle,
		"toTOML":                toTOML,
		"toYAML":                toYAML,
		"add":                   arith("add"),
		"subtract":              arith("subtract"),
		"multiply":              arith("multiply"),
		"divide":                arith("divide"),
		"modulo":                arith("modulo"),
		"minimum":               arith("minimum"),
		"maximum":               arith("maximum"),
	}
}

// in reports whether needle is an element of the list haystack, a substring
// of the string haystack, or a key of the map haystack.
func in(haystack, needle any) (bool, error) {
	if haystack == nil {
		return false, nil
	}
	hv := reflect.ValueOf(haystack)
	switch hv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < hv.Len(); i++ {
			if equal(hv.Index(i).Interface(), needle) {
				return true, nil
			}
		}
		return false, nil
	case reflect.String:
		n, ok := needle.(string)
		if !ok {
			return false, nil
		}
		return strings.Contains(hv.String(), n), nil
	case reflect.Map:
		nv := reflect.ValueOf(needle)
		if !nv.IsValid() || !nv.Type().AssignableTo(hv.Type().Key()) {
			return false, nil
		}
		return hv.MapIndex(nv).IsValid(), nil
	default:
		return false, ferr("the haystack is a %s, not a list, string or map", hv.Kind())
	}
}

func equal(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta == tb && ta.Comparable() {
		return a == b
	}
	return reflect.DeepEqual(a, b)
}

// containsSome builds containsAll (true, true), containsAny (false, false),
// containsNone (true, false) and containsNotAll (false, true).
func containsSome(retTrue, invert bool) func(needles, haystack any) (bool, error) {
	return func(needles, haystack any) (bool, error) {
		nv := reflect.ValueOf(needles)
		if needles == nil {
			return retTrue, nil
		}
		if nv.Kind() != reflect.Slice && nv.Kind() != reflect.Array {
			return false, ferr("the needles are a %s, not a list", nv.Kind())
		}
		for i := 0; i < nv.Len(); i++ {
			ok, err := in(haystack, nv.Index(i).Interface())
			if err != nil {
				return false, err
			}
			if ok != invert {
				return !retTrue, nil
			}
		}
		return retTrue, nil
	}
}

// indent puts spaces before every line that is not empty.
func indent(spaces int, s string) (string, error) {
	if spaces < 0 {
		return "", ferr("negative width")
	}
	lines := strings.Count(s, "\n") + 1
	if spaces > 0 && lines > (MaxOutput-len(s))/spaces {
		return "", ferr("the result would exceed %d MiB", MaxOutput>>20)
	}
	pad := strings.Repeat(" ", spaces)
	var b strings.Builder
	b.Grow(len(s) + lines*spaces)
	atStart := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if atStart && c != '\n' {
			b.WriteString(pad)
		}
		b.WriteByte(c)
		atStart = c == '\n'
	}
	return b.String(), nil
}

// join joins the elements of any list with sep.
func join(sep string, list any) (string, error) {
	switch l := list.(type) {
	case nil:
		return "", nil
	case []string:
		return strings.Join(l, sep), nil
	}
	v := reflect.ValueOf(list)
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return "", ferr("the value is a %s, not a list", v.Kind())
	}
	parts := make([]string, v.Len())
	for i := range parts {
		parts[i] = fmt.Sprint(v.Index(i).Interface())
	}
	return strings.Join(parts, sep), nil
}

func parseBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, ferr("the value is not a boolean")
	}
	return b, nil
}

func parseFloat(s string) (float64, error) {
	return parseNumber(s, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }, "the value is not a number")
}

func parseInt(s string) (int64, error) {
	return parseNumber(s, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }, "the value is not a base-10 integer")
}

func parseUint(s string) (uint64, error) {
	return parseNumber(s, func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }, "the value is not a base-10 unsigned integer")
}

// parseNumber is the parse* functions: "" is zero, as in consul-template,
// and an error never echoes the value.
func parseNumber[T any](s string, parse func(string) (T, error), notNumber string) (T, error) {
	var zero T
	if s == "" {
		return zero, nil
	}
	n, err := parse(s)
	if err != nil {
		return zero, ferr("%s", notNumber)
	}
	return n, nil
}

// compile compiles a template's regular expression; its error names the
// problem, not the pattern (which could have come from a secret).
func compile(re string) (*regexp.Regexp, error) {
	rx, err := regexp.Compile(re)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, ferr("invalid regular expression: %s", se.Code)
		}
		return nil, ferr("invalid regular expression")
	}
	return rx, nil
}

func regexMatch(re, s string) (bool, error) {
	rx, err := compile(re)
	if err != nil {
		return false, err
	}
	return rx.MatchString(s), nil
}

func regexReplaceAll(re, repl, s string) (string, error) {
	rx, err := compile(re)
	if err != nil {
		return "", err
	}
	return rx.ReplaceAllString(s, repl), nil
}

// timestamp is the current time in UTC: RFC 3339, the given layout, or
// seconds since the epoch for "unix".
func timestamp(layout ...string) (string, error) {
	t := now().UTC()
	switch len(layout) {
	case 0:
		return t.Format(time.RFC3339), nil
	case 1:
		if layout[0] == "unix" {
			return strconv.FormatInt(t.Unix(), 10), nil
		}
		return t.Format(layout[0]), nil
	default:
		return "", ferr("timestamp takes at most one layout, got %d", len(layout))
	}
}

func toJSON(v any, pretty, escapeHTML bool) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if pretty {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		var ute *json.UnsupportedTypeError
		if errors.As(err, &ute) {
			return "", ferr("a %s cannot be written as JSON", ute.Type)
		}
		return "", ferr("the value cannot be written as JSON")
	}
	return string(bytes.TrimSpace(b.Bytes())), nil
}

func toYAML(v any) (s string, err error) {
	defer func() {
		if recover() != nil {
			s, err = "", ferr("the value cannot be written as YAML")
		}
	}()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "", ferr("the value cannot be written as YAML")
	}
	if err := enc.Close(); err != nil {
		return "", ferr("the value cannot be written as YAML")
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func toTOML(v any) (s string, err error) {
	defer func() {
		if recover() != nil {
			s, err = "", ferr("the value cannot be written as TOML")
		}
	}()
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(plainNumbers(v, 0)); err != nil {
		return "", ferr("the value cannot be written as TOML (it must be a map)")
	}
	return b.String(), nil
}

// plainNumbers turns the json.Number values in v into int64 or float64, so
// TOML writes them as numbers rather than strings.
func plainNumbers(v any, depth int) any {
	if depth > 64 {
		return v
	}
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return v.String()
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = plainNumbers(e, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = plainNumbers(e, depth+1)
		}
		return out
	}
	return v
}

// toTitle upper-cases the first letter of each word.
func toTitle(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		sep := !(unicode.IsLetter(prev) || unicode.IsDigit(prev) || prev == '_' || prev == '\'')
		prev = r
		if sep {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

// number is an integer or a float operand of the math functions.
type number struct {
	i     int64
	f     float64
	float bool
}

func toNumber(v any) (number, error) {
	if n, ok := v.(json.Number); ok {
		// Numbers in a secret's data arrive as json.Number.
		if i, err := n.Int64(); err == nil {
			return number{i: i}, nil
		}
		if f, err := n.Float64(); err == nil {
			return number{f: f, float: true}, nil
		}
		return number{}, ferr("the value is not a number")
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return number{i: rv.Int()}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return number{f: float64(u), float: true}, nil
		}
		return number{i: int64(u)}, nil
	case reflect.Float32, reflect.Float64:
		return number{f: rv.Float(), float: true}, nil
	}
	if rv.IsValid() {
		return number{}, ferr("a %s is not a number", rv.Kind())
	}
	return number{}, ferr("nil is not a number")
}

func (n number) asFloat() float64 {
	if n.float {
		return n.f
	}
	return float64(n.i)
}

// arith builds a math function. As in consul-template the operand piped in
// comes last: {{ 10 | subtract 3 }} is 7.
func arith(fn string) func(b, a any) (any, error) {
	return func(bv, av any) (any, error) {
		a, err := toNumber(av)
		if err != nil {
			return nil, err
		}
		b, err := toNumber(bv)
		if err != nil {
			return nil, err
		}
		if !a.float && !b.float {
			x, y := a.i, b.i
			switch fn {
			case "add":
				return x + y, nil
			case "subtract":
				return x - y, nil
			case "multiply":
				return x * y, nil
			case "divide":
				if y == 0 {
					return nil, ferr("division by zero")
				}
				if x == math.MinInt64 && y == -1 {
					return nil, ferr("integer overflow")
				}
				return x / y, nil
			case "modulo":
				if y == 0 {
					return nil, ferr("division by zero")
				}
				if y == -1 {
					return int64(0), nil
				}
				return x % y, nil
			case "minimum":
				return min(x, y), nil
			case "maximum":
				return max(x, y), nil
			}
		}
		x, y := a.asFloat(), b.asFloat()
		switch fn {
		case "add":
			return x + y, nil
		case "subtract":
			return x - y, nil
		case "multiply":
			return x * y, nil
		case "divide":
			if y == 0 {
				return nil, ferr("division by zero")
			}
			return x / y, nil
		case "modulo":
			if y == 0 {
				return nil, ferr("division by zero")
			}
			return math.Mod(x, y), nil
		case "minimum":
			return math.Min(x, y), nil
		case "maximum":
			return math.Max(x, y), nil
		}
		return nil, ferr("unknown operation %s", fn)
	}
}

// scratch is consul-template's per-render scratchpad.
type scratch struct {
	values map[string]any
}

func (s *scratch) init() {
	if s.values == nil {
		s.values = map[string]any{}
	}
}

// Key reports whether k holds a value (even nil).
func (s *scratch) Key(k string) bool { _, ok := s.values[k]; return ok }

// Get returns the value at k, or nil.
func (s *scratch) Get(k string) any { return s.values[k] }

// Set stores v at k.
func (s *scratch) Set(k string, v any) string { s.init(); s.values[k] = v; return "" }

// SetX stores v at k unless k holds a value.
func (s *scratch) SetX(k string, v any) string {
	s.init()
	if _, ok := s.values[k]; !ok {
		s.values[k] = v
	}
	return ""
}

func (s *scratch) mapAt(k string) (map[string]any, error) {
	s.init()
	cur, ok := s.values[k]
	if !ok || cur == nil {
		m := map[string]any{}
		s.values[k] = m
		return m, nil
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, ferr("scratch key %q holds something other than a map", k)
	}
	return m, nil
}

// MapSet stores v under mk in the map at k.
func (s *scratch) MapSet(k, mk string, v any) (string, error) {
	m, err := s.mapAt(k)
	if err != nil {
		return "", err
	}
	m[mk] = v
	return "", nil
}

// MapSetX stores v under mk in the map at k unless mk is there.
func (s *scratch) MapSetX(k, mk string, v any) (string, error) {
	m, err := s.mapAt(k)
	if err != nil {
		return "", err
	}
	if _, ok := m[mk]; !ok {
		m[mk] = v
	}
	return "", nil
}

// MapValues returns the values of the map at k, sorted by their keys.
func (s *scratch) MapValues(k string) ([]any, error) {
	cur, ok := s.values[k]
	if !ok || cur == nil {
		return nil, nil
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, ferr("scratch key %q holds something other than a map", k)
	}
	keys := make([]string, 0, len(m))
	for mk := range m {
		keys = append(keys, mk)
	}
	sort.Strings(keys)
	out := make([]any, len(keys))
	for i, mk := range keys {
		out[i] = m[mk]
	}
	return out, nil
}
