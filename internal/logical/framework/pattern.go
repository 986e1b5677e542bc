package framework

import (
	"fmt"
	"regexp"
	"regexp/syntax"
)

// CheckPattern reports whether pattern is a sound path pattern: it parses,
// and each of its named groups spans whole path segments. A named group
// must start at the start of the pattern or right after a literal "/", and
// end at the end of the pattern or right before a literal "/". Without that
// rule a literal segment could match the front of a longer one:
// "metadata/?(?P<path>.*)" would serve "metadataadmin/db" as the metadata of
// "admin/db", a path the ACL never saw. Write "metadata(?:/(?P<path>.*))?"
// or two patterns instead.
func CheckPattern(pattern string) error {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return fmt.Errorf("framework: pattern %q does not parse: %w", pattern, err)
	}
	return checkSegments(pattern, re, true, true)
}

// check checks p's pattern and that each of its named groups is a declared
// field, so that a handler reads every capture through FieldData.
func (p *Path) check() error {
	if err := CheckPattern(p.Pattern); err != nil {
		return err
	}
	re := regexp.MustCompile(p.Pattern)
	for _, name := range re.SubexpNames() {
		if _, ok := p.Fields[name]; name != "" && !ok {
			return fmt.Errorf("framework: pattern %q: group %q is not a declared field", p.Pattern, name)
		}
	}
	return nil
}

// checkSegments walks re. before and after tell whether the text next to re
// is known to end, and begin, at a segment boundary.
func checkSegments(pattern string, re *syntax.Regexp, before, after bool) error {
	switch re.Op {
	case syntax.OpCapture:
		if re.Name != "" && !(before && after) {
			return fmt.Errorf("framework: pattern %q: group %q must span whole path segments: start it after a literal \"/\" (or at the start) and end it before one (or at the end)", pattern, re.Name)
		}
		return checkSegments(pattern, re.Sub[0], before, after)
	case syntax.OpConcat:
		for i, sub := range re.Sub {
			b := slashBefore(re.Sub[:i], before)
			a := slashAfter(re.Sub[i+1:], after)
			if err := checkSegments(pattern, sub, b, a); err != nil {
				return err
			}
		}
	case syntax.OpAlternate, syntax.OpQuest:
		for _, sub := range re.Sub {
			if err := checkSegments(pattern, sub, before, after); err != nil {
				return err
			}
		}
	default:
		// A repeated group is next to itself: nothing is known of its edges.
		for _, sub := range re.Sub {
			if err := checkSegments(pattern, sub, false, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// slashAfter reports whether the text matched by seq, followed by text that
// starts at a boundary when end is true, always starts with "/" (or is at
// that boundary). Optional parts that start with "/" are looked through.
func slashAfter(seq []*syntax.Regexp, end bool) bool {
	for _, re := range seq {
		switch re.Op {
		case syntax.OpEmptyMatch:
			continue
		case syntax.OpQuest, syntax.OpStar:
			if !slashAfter(re.Sub, false) {
				return false
			}
			continue
		case syntax.OpLiteral:
			return re.Rune[0] == '/'
		case syntax.OpConcat, syntax.OpCapture:
			return slashAfter(re.Sub, false)
		case syntax.OpAlternate:
			for _, sub := range re.Sub {
				if !slashAfter([]*syntax.Regexp{sub}, false) {
					return false
				}
			}
			return true
		}
		return false
	}
	return end
}

// slashBefore is slashAfter for the text before a group: seq must always
// end with "/", or be empty after a boundary when start is true.
func slashBefore(seq []*syntax.Regexp, start bool) bool {
	for i := len(seq) - 1; i >= 0; i-- {
		re := seq[i]
		switch re.Op {
		case syntax.OpEmptyMatch:
			continue
		case syntax.OpQuest, syntax.OpStar:
			if !slashBefore(re.Sub, false) {
				return false
			}
			continue
		case syntax.OpLiteral:
			return re.Rune[len(re.Rune)-1] == '/'
		case syntax.OpConcat, syntax.OpCapture:
			return slashBefore(re.Sub, false)
		case syntax.OpAlternate:
			for _, sub := range re.Sub {
				if !slashBefore([]*syntax.Regexp{sub}, false) {
					return false
				}
			}
			return true
		}
		return false
	}
	return start
}
