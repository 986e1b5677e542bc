package scan

import "regexp/syntax"

// maxWindow bounds the bytes a rule's regex may look at around a keyword
// hit when the regex itself is unbounded.
const maxWindow = 64 << 10

// regexShape reports how far a regex can reach from a keyword hit (the
// most bytes one match can span, capped at maxWindow) and whether a match
// can cross a line break. Both come from the regex's syntax tree, so the
// window is exactly as wide as the rule needs.
func regexShape(expr string) (span int, multiline bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return maxWindow, true
	}
	re = re.Simplify()
	span = maxLen(re)
	if span < 0 || span > maxWindow {
		span = maxWindow
	}
	return span, canMatchNewline(re)
}

// maxLen is the longest match in bytes, or -1 when unbounded.
func maxLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += runeBytes(r)
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return 4
	case syntax.OpCapture:
		return maxLen(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		return -1
	case syntax.OpQuest:
		return maxLen(re.Sub[0])
	case syntax.OpRepeat:
		if re.Max < 0 {
			return -1
		}
		n := maxLen(re.Sub[0])
		if n < 0 {
			return -1
		}
		return n * re.Max
	case syntax.OpConcat:
		total := 0
		for _, s := range re.Sub {
			n := maxLen(s)
			if n < 0 {
				return -1
			}
			total += n
		}
		return total
	case syntax.OpAlternate:
		best := 0
		for _, s := range re.Sub {
			n := maxLen(s)
			if n < 0 {
				return -1
			}
			best = max(best, n)
		}
		return best
	}
	return 0 // anchors, empty
}

func runeBytes(r rune) int {
	switch {
	case r < 0x80:
		return 1
	case r < 0x800:
		return 2
	case r < 0x10000:
		return 3
	}
	return 4
}

// canMatchNewline reports whether some match can contain '\n'.
func canMatchNewline(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r == '\n' {
				return true
			}
		}
		return false
	case syntax.OpAnyChar:
		return true
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= '\n' && '\n' <= re.Rune[i+1] {
				return true
			}
		}
		return false
	}
	for _, s := range re.Sub {
		if canMatchNewline(s) {
			return true
		}
	}
	return false
}
