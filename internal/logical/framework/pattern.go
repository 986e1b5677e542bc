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
		last := len(re.Sub) - 1
		for i, sub := range re.Sub {
			b, a := before, after
			if i > 0 {
				b = endsWithSlash(re.Sub[i-1])
			}
			if i < last {
				a = startsWithSlash(re.Sub[i+1])
			}
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

// endsWithSlash reports whether every match of re ends with "/".
func endsWithSlash(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) > 0 && re.Rune[len(re.Rune)-1] == '/'
	case syntax.OpConcat:
		return len(re.Sub) > 0 && endsWithSlash(re.Sub[len(re.Sub)-1])
	case syntax.OpCapture:
		return endsWithSlash(re.Sub[0])
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !endsWithSlash(sub) {
				return false
			}
		}
		return true
	}
	return false
}

// startsWithSlash reports whether every match of re starts with "/".
func startsWithSlash(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) > 0 && re.Rune[0] == '/'
	case syntax.OpConcat:
		return len(re.Sub) > 0 && startsWithSlash(re.Sub[0])
	case syntax.OpCapture:
		return startsWithSlash(re.Sub[0])
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !startsWithSlash(sub) {
				return false
			}
		}
		return true
	}
	return false
}
