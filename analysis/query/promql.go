package query

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/prometheus/promql/parser"
)

// sentinel marks where printed value i goes in a rendered query until
// substitute writes it. A query cannot contain NUL (Render checks), so a
// sentinel cannot be confused with the template's text.
func sentinel(i int) string { return "\x00" + strconv.Itoa(i) + "\x00" }

// lexState is where the PromQL lexer is at a point of a query: which kind
// of string or comment it is inside, if any. It follows the lexer of
// github.com/prometheus/prometheus/promql/parser (lexStatements,
// lexInsideBraces, lexString, lexRawString, lexLineComment): outside a
// string, " and ' open a string, ` a raw string, # a comment to the end
// of the line; inside a string a backslash escapes the next character
// (and \x, \u, \U and octal escapes take 2, 4, 8 and 3 digits).
type lexState int

const (
	inCode lexState = iota
	inDoubleQuoted
	inSingleQuoted
	inRaw
	inComment
)

// substitute writes each value where its sentinel is in out, for where it
// landed.
func substitute(out string, values []printed) (string, error) {
	var b strings.Builder
	state := inCode
	// escape is, inside a string, afterBackslash just after a backslash,
	// then the number of characters the escape sequence still takes.
	escape := 0
	for i := 0; i < len(out); {
		c := out[i]
		if c == 0 {
			end := strings.IndexByte(out[i+1:], 0)
			n, _ := strconv.Atoi(out[i+1 : i+1+end])
			v := values[n]
			if escape != 0 {
				return "", v.errorf("lands inside an escape sequence of the query (after a backslash): move it after the escape")
			}
			s, err := place(v, state)
			if err != nil {
				return "", err
			}
			b.WriteString(s)
			i += end + 2
			continue
		}
		b.WriteByte(c)
		i++
		switch state {
		case inCode:
			switch c {
			case '"':
				state = inDoubleQuoted
			case '\'':
				state = inSingleQuoted
			case '`':
				state = inRaw
			case '#':
				state = inComment
			}
		case inDoubleQuoted, inSingleQuoted:
			switch {
			case escape == afterBackslash:
				escape = escapeLength(c)
			case escape > 0:
				escape--
			case c == '\\':
				escape = afterBackslash
			case c == '"' && state == inDoubleQuoted, c == '\'' && state == inSingleQuoted:
				state = inCode
			}
		case inRaw:
			if c == '`' {
				state = inCode
			}
		case inComment:
			if c == '\n' || c == '\r' {
				state = inCode
			}
		}
	}
	return b.String(), nil
}

// afterBackslash marks "just after a backslash" in substitute: the next
// character says how many more the escape takes.
const afterBackslash = -1

// escapeLength is how many characters follow c in the escape \c: \x41,
// \u00e9, \U0001f600, \101.
func escapeLength(c byte) int {
	switch {
	case c == 'x':
		return 2
	case c == 'u':
		return 4
	case c == 'U':
		return 8
	case c >= '0' && c <= '7':
		return 2
	}
	return 0
}

// place writes a value for where it landed.
func place(v printed, state lexState) (string, error) {
	switch state {
	case inDoubleQuoted:
		return quoted(v, '"')
	case inSingleQuoted:
		return quoted(v, '\'')
	case inRaw:
		switch {
		case strings.ContainsRune(v.value, '`'):
			return "", v.errorf("contains a backtick, which would end the `raw string` it is in: put it in double quotes instead")
		case !utf8.ValidString(v.value) || strings.ContainsRune(v.value, utf8.RuneError):
			return "", v.errorf("is not valid UTF-8, which a `raw string` cannot hold: put it in double quotes instead")
		}
		return v.value, nil
	case inComment:
		if strings.ContainsAny(v.value, "\r\n") {
			return "", v.errorf("contains a line break, which would end the # comment it is in")
		}
		return v.value, nil
	}
	if bareValue(v.value) {
		return v.value, nil
	}
	return "", v.errorf("stands outside quotes, where only a number (0.05), a duration (5m) or a metric, label or function name fits: put it inside a string (\"{{ ... }}\") or give such a value")
}

// quoted escapes a value for a string in quote, so that PromQL reads
// exactly the value back: the quote and backslash escaped, a line break
// as \n, and what PromQL's lexer rejects or a reader cannot see (control
// and other unprintable characters, U+FFFD itself) as \u or \U escapes.
func quoted(v printed, quote rune) (string, error) {
	if !utf8.ValidString(v.value) {
		return "", v.errorf("is not valid UTF-8, which a PromQL string cannot hold")
	}
	var b strings.Builder
	for _, r := range v.value {
		switch {
		case r == quote || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == utf8.RuneError || !unicode.IsPrint(r):
			if r <= 0xFFFF {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

var (
	number   = regexp.MustCompile(`^(0[xX][0-9a-fA-F]+|[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?|(?i:inf|nan))$`)
	duration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	name     = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	keywords = func() map[string]bool {
		m := map[string]bool{}
		for _, k := range parser.Keywords() {
			m[strings.ToLower(k)] = true
		}
		return m
	}()
)

// bareValue reports whether v can stand outside quotes as one token that
// adds nothing to the query: a number, a duration, or a name that is no
// keyword (and, or, by, offset, sum, ...).
func bareValue(v string) bool {
	return number.MatchString(v) || duration.MatchString(v) || (name.MatchString(v) && !keywords[strings.ToLower(v)])
}
