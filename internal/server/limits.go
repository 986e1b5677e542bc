package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// JSONLimits bound the shape of a JSON request body, checked before it is
// decoded so a deeply nested or enormous document costs one linear scan
// and no allocation. Zero fields take the defaults Vault uses.
type JSONLimits struct {
	MaxDepth         int // nesting of objects and arrays; default 300
	MaxStringLength  int // bytes in one string, keys included; default 1 MiB
	MaxObjectEntries int // members of one object; default 10,000
	MaxArrayElements int // elements of one array; default 10,000
}

func (l JSONLimits) withDefaults() JSONLimits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = 300
	}
	if l.MaxStringLength <= 0 {
		l.MaxStringLength = 1 << 20
	}
	if l.MaxObjectEntries <= 0 {
		l.MaxObjectEntries = 10000
	}
	if l.MaxArrayElements <= 0 {
		l.MaxArrayElements = 10000
	}
	return l
}

// check scans raw and reports the first limit it breaks. It does not
// validate the JSON; the decoder does that afterwards.
func (l JSONLimits) check(raw []byte) error {
	type level struct {
		object bool
		count  int
	}
	var stack []level
	inString, escaped := false, false
	strStart := 0
	for i, c := range raw {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				if i-strStart > l.MaxStringLength {
					return logical.BadRequest("JSON input has a string of %d bytes, above the %d-byte limit (max_json_string_value_length)", i-strStart, l.MaxStringLength)
				}
			}
			continue
		}
		switch c {
		case '"':
			inString, strStart = true, i+1
		case '{', '[':
			if len(stack) >= l.MaxDepth {
				return logical.BadRequest("JSON input is nested more than %d levels deep (max_json_depth)", l.MaxDepth)
			}
			stack = append(stack, level{object: c == '{'})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if len(stack) == 0 {
				continue
			}
			top := &stack[len(stack)-1]
			top.count++
			if top.object && top.count >= l.MaxObjectEntries {
				return logical.BadRequest("a JSON object in the input has more than %d entries (max_json_object_entry_count)", l.MaxObjectEntries)
			}
			if !top.object && top.count >= l.MaxArrayElements {
				return logical.BadRequest("a JSON array in the input has more than %d elements (max_json_array_element_count)", l.MaxArrayElements)
			}
		}
	}
	return nil
}

// writeRateLimited answers a request a quota refused: 429 with
// Retry-After, as Vault does.
func writeRateLimited(w http.ResponseWriter, path string, d rateDecision) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.RetryAfter.Seconds()))))
	writeErrors(w, http.StatusTooManyRequests, fmt.Sprintf("request path %q: rate limit quota exceeded", path))
}

// setRateLimitHeaders adds the X-Ratelimit-* headers when the quota
// configuration asks for them.
func setRateLimitHeaders(w http.ResponseWriter, d rateDecision) {
	if !d.Headers || d.Quota == "" {
		return
	}
	h := w.Header()
	h.Set("X-Ratelimit-Limit", strconv.Itoa(d.Limit))
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("X-Ratelimit-Reset", strconv.Itoa(int(math.Ceil(d.Reset.Seconds()))))
}

// DefaultMaxRequestDuration bounds how long one request may run unless the
// listener sets max_request_duration.
const DefaultMaxRequestDuration = 90 * time.Second
