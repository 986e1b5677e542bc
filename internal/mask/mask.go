// Package mask hides secret values in a stream of output: every value, and
// its base64 and URL-encoded forms, is replaced by *****, even when a
// value arrives split across writes. `arca run` and `arca file exec-env`
// pass their child's stdout and stderr through it so secrets never reach CI
// logs.
//
// For each value a Set hides these forms: the value itself; each line of a
// multi-line value that is at least MinLen bytes long; its standard and
// URL-safe base64 encodings, padded and raw; the part of the base64 text
// that depends on the value alone when the value sits at byte offset 0, 1
// or 2 of a longer encoded string (so base64("user:"+secret), as in HTTP
// Basic auth, is caught); its URL query-escaped and path-escaped forms; and
// its JSON string escaping (with and without HTML escaping) when that
// differs from the value.
//
// Values shorter than MinLen bytes are not hidden: masking every "abc" or
// "1" in the output would destroy it without protecting anything.
//
// Matching is one Aho-Corasick automaton over every form. Where matches
// overlap they merge into one *****; a longer form wins over a shorter one
// that it contains. A Writer holds back only the longest tail of what it
// has seen that could still begin a form, so output that does not look like
// a secret passes through at once.
package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Replacement is what a masked value becomes.
const Replacement = "*****"

// MinLen is the length, in bytes, below which a value (or a line of a
// multi-line value) is not masked.
const MinLen = 4

// Set is the values to hide, with their encoded forms. It is immutable and
// may be shared by any number of Writers.
type Set struct {
	// class maps a byte to its column in next; bytes that appear in no
	// form share column 0 (unless all 256 appear).
	class   [256]uint8
	classes int32
	// States are numbered breadth-first, root 0. The first dense states
	// have a full row of transitions in next (next[state*classes+class]);
	// the deeper rest keep only their trie edges (edges[edgeAt[s]:edgeAt[s+1]])
	// and fall back along fail, so a long value costs memory in proportion
	// to its length, not to its length times the alphabet.
	dense  int32
	next   []int32
	edgeAt []int32
	edges  []edge
	fail   []int32
	// depth is the length of the prefix a state stands for; match is the
	// length of the longest form that ends in that state (0: none).
	depth []int32
	match []int32
	forms []string
}

type edge struct {
	class uint8
	to    int32
}

// denseBudget bounds the dense transition table (in entries of 4 bytes);
// a variable so tests can force the sparse path.
var denseBudget = 1 << 21

// New returns a set hiding values (and their encodings). Values shorter
// than MinLen bytes are ignored.
func New(values []string) *Set {
	seen := map[string]bool{}
	var forms []string
	for _, v := range values {
		for _, f := range Forms(v) {
			if !seen[f] {
				seen[f] = true
				forms = append(forms, f)
			}
		}
	}
	sort.Strings(forms)
	return build(forms)
}

// Forms returns the forms of v that a Set hides, longest first; none when v
// is shorter than MinLen bytes.
func Forms(v string) []string {
	if len(v) < MinLen {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if len(f) >= MinLen && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	add(v)
	if strings.ContainsAny(v, "\r\n") {
		for _, line := range strings.Split(v, "\n") {
			add(strings.TrimSuffix(line, "\r"))
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		add(enc.EncodeToString([]byte(v)))
		raw := enc.WithPadding(base64.NoPadding)
		add(raw.EncodeToString([]byte(v)))
		for off := 0; off < 3; off++ {
			add(base64Core(raw, v, off))
		}
	}
	add(url.QueryEscape(v))
	add(url.PathEscape(v))
	for _, html := range []bool{false, true} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(v) == nil {
			s := strings.TrimSuffix(b.String(), "\n")
			add(s[1 : len(s)-1])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// base64Core is the part of the base64 text of a longer string, with v at
// byte offset off (0, 1 or 2 modulo 3), that depends on v's bytes alone:
// the characters whose 6 bits all come from v.
func base64Core(raw *base64.Encoding, v string, off int) string {
	enc := raw.EncodeToString(append(make([]byte, off), v...))
	from := (8*off + 5) / 6
	to := 8 * (off + len(v)) / 6
	if to-from < MinLen {
		return ""
	}
	return enc[from:to]
}

// build compiles the automaton over forms.
func build(forms []string) *Set {
	s := &Set{forms: forms}
	var used [256]bool
	for _, f := range forms {
		for i := 0; i < len(f); i++ {
			used[f[i]] = true
		}
	}
	n := int32(1)
	for b := 0; b < 256; b++ {
		if used[b] {
			n++
		}
	}
	if n > 256 {
		// Every byte value occurs: each is its own class.
		for b := 0; b < 256; b++ {
			s.class[b] = uint8(b)
		}
		s.classes = 256
	} else {
		c := uint8(1)
		for b := 0; b < 256; b++ {
			if used[b] {
				s.class[b] = c
				c++
			}
		}
		s.classes = n
	}

	// The trie, with sparse children, in insertion order.
	type node struct {
		kids  []edge
		depth int32
		match int32
	}
	trie := []node{{}}
	for _, f := range forms {
		st := int32(0)
		for i := 0; i < len(f); i++ {
			c := s.class[f[i]]
			to := int32(-1)
			for _, e := range trie[st].kids {
				if e.class == c {
					to = e.to
					break
				}
			}
			if to < 0 {
				to = int32(len(trie))
				trie = append(trie, node{depth: int32(i + 1)})
				trie[st].kids = append(trie[st].kids, edge{c, to})
			}
			st = to
		}
		trie[st].match = int32(len(f))
	}

	// Number the states breadth-first.
	order := make([]int32, 0, len(trie)) // new id -> trie index
	id := make([]int32, len(trie))       // trie index -> new id
	order = append(order, 0)
	for i := 0; i < len(order); i++ {
		for _, e := range trie[order[i]].kids {
			id[e.to] = int32(len(order))
			order = append(order, e.to)
		}
	}
	total := int32(len(order))
	s.depth = make([]int32, total)
	s.match = make([]int32, total)
	s.fail = make([]int32, total)
	s.edgeAt = make([]int32, total+1)
	for nid, ti := range order {
		s.depth[nid] = trie[ti].depth
		s.match[nid] = trie[ti].match
		for _, e := range trie[ti].kids {
			s.edges = append(s.edges, edge{e.class, id[e.to]})
		}
		s.edgeAt[nid+1] = int32(len(s.edges))
	}
	s.dense = total
	if budget := int32(denseBudget / int(s.classes)); s.dense > budget {
		s.dense = budget
	}
	if s.dense < 1 {
		s.dense = 1
	}
	s.next = make([]int32, int(s.dense)*int(s.classes))

	// Breadth-first again, in new ids (which are breadth-first already):
	// failure links, inherited matches, and the dense rows. A state's
	// failure state is shallower, so it comes earlier and is complete.
	for st := int32(0); st < total; st++ {
		if st > 0 && s.match[st] == 0 {
			s.match[st] = s.match[s.fail[st]]
		}
		if st < s.dense {
			row := s.next[int(st)*int(s.classes) : int(st+1)*int(s.classes)]
			if st > 0 {
				copy(row, s.next[int(s.fail[st])*int(s.classes):])
			}
		}
		for _, e := range s.edges[s.edgeAt[st]:s.edgeAt[st+1]] {
			if st == 0 {
				s.fail[e.to] = 0
			} else {
				s.fail[e.to] = s.step(s.fail[st], e.class)
			}
			if st < s.dense {
				s.next[int(st)*int(s.classes)+int(e.class)] = e.to
			}
		}
	}
	return s
}

// step is the transition from st on class c.
func (s *Set) step(st int32, c uint8) int32 {
	for {
		if st < s.dense {
			return s.next[st*s.classes+int32(c)]
		}
		for _, e := range s.edges[s.edgeAt[st]:s.edgeAt[st+1]] {
			if e.class == c {
				return e.to
			}
		}
		st = s.fail[st]
	}
}

// Empty reports whether the set hides nothing (every value was too short).
func (s *Set) Empty() bool { return len(s.forms) == 0 }

// Mask returns b with every form of every value replaced.
func (s *Set) Mask(b []byte) []byte {
	var out bytes.Buffer
	w := s.Writer(&out)
	w.Write(b) //nolint:errcheck // a bytes.Buffer does not fail
	w.Close()
	return out.Bytes()
}

// Writer returns a writer that masks what it passes to w. It holds back
// only the bytes that may begin a value; Close writes those out (it does
// not close w). A Writer is for one stream: use one per stdout and stderr.
func (s *Set) Writer(w io.Writer) io.WriteCloser {
	return &writer{set: s, w: w}
}

type writer struct {
	mu  sync.Mutex
	set *Set
	w   io.Writer
	// state is the automaton's state after every byte seen so far.
	state int32
	// pos counts the bytes seen; emitted counts those already written out
	// (plainly or as part of a mask); maskedTo ends the last masked run.
	pos, emitted, maskedTo int64
	// held is the input from emitted to pos.
	held []byte
	out  []byte
	err  error
}

func (m *writer) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, m.err
	}
	s := m.set
	if len(s.forms) == 0 {
		if _, err := m.w.Write(p); err != nil {
			m.err = err
			return 0, err
		}
		return len(p), nil
	}
	k := s.classes
	start := m.pos // the absolute position of p[0]
	m.out = m.out[:0]
	st := m.state
	next, match, class, dense := s.next, s.match, &s.class, s.dense
	for i, b := range p {
		c := class[b]
		if st < dense {
			st = next[st*k+int32(c)]
		} else {
			st = s.step(st, c)
		}
		n := match[st]
		if n == 0 {
			continue
		}
		end := start + int64(i) + 1
		from := end - int64(n)
		if from < m.maskedTo {
			// Overlaps the run being masked: it grows.
			m.maskedTo = end
			m.emitted = end
			continue
		}
		m.out = m.appendRange(m.out, p, start, m.emitted, from)
		m.out = append(m.out, Replacement...)
		m.maskedTo, m.emitted = end, end
	}
	m.state = st
	m.pos = start + int64(len(p))
	// Everything before the longest tail that may still begin a form is
	// safe to write.
	if safe := m.pos - int64(s.depth[st]); safe > m.emitted {
		m.out = m.appendRange(m.out, p, start, m.emitted, safe)
		m.emitted = safe
	}
	// Keep the rest.
	var kept []byte
	if m.emitted < m.pos {
		kept = m.appendRange(nil, p, start, m.emitted, m.pos)
	}
	m.held = kept
	if len(m.out) > 0 {
		if _, err := m.w.Write(m.out); err != nil {
			m.err = err
			return 0, err
		}
	}
	return len(p), nil
}

// appendRange appends the input bytes from absolute position a to b, which
// lie in held (starting at m.emitted as it was before this write began)
// and p (starting at pStart).
func (m *writer) appendRange(dst, p []byte, pStart, a, b int64) []byte {
	if a >= b {
		return dst
	}
	heldStart := pStart - int64(len(m.held))
	if a < pStart {
		hb := b
		if hb > pStart {
			hb = pStart
		}
		dst = append(dst, m.held[a-heldStart:hb-heldStart]...)
		a = hb
	}
	if a < b {
		dst = append(dst, p[a-pStart:b-pStart]...)
	}
	return dst
}

// Close writes out the bytes held back: they began a form but never
// completed one.
func (m *writer) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if len(m.held) > 0 {
		held := m.held
		m.held = nil
		m.emitted = m.pos
		if _, err := m.w.Write(held); err != nil {
			m.err = err
			return err
		}
	}
	// A later write starts afresh.
	m.state = 0
	return nil
}
