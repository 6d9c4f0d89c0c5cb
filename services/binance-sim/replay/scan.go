package replay

import (
	"errors"
	"fmt"
)

// ErrJSON reports malformed JSON met by Fields.
var ErrJSON = errors.New("malformed JSON")

// Fields walks the members of the JSON object b at the top level, calling
// fn with each key (unescaped only if it has no escapes, which every key
// binance-sim looks for) and the byte span [vOff, vEnd) of its value.
// Values are skipped, not decoded. fn returns false to stop early.
func Fields(b []byte, fn func(key []byte, vOff, vEnd int) bool) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return fmt.Errorf("%w: want an object at %d", ErrJSON, i)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return fmt.Errorf("%w: want a key at %d", ErrJSON, i)
		}
		ke, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("%w: want ':' at %d", ErrJSON, i)
		}
		i = skipWS(b, i+1)
		ve, err := skipValue(b, i, 0)
		if err != nil {
			return err
		}
		if !fn(key, i, ve) {
			return nil
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return fmt.Errorf("%w: unterminated object", ErrJSON)
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return trailing(b, i+1)
		default:
			return fmt.Errorf("%w: want ',' or '}' at %d", ErrJSON, i)
		}
	}
}

func trailing(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return fmt.Errorf("%w: data after the object at %d", ErrJSON, i)
	}
	return nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		default:
			if b[j] < 0x20 {
				return 0, fmt.Errorf("%w: control character in string at %d", ErrJSON, j)
			}
		}
	}
	return 0, fmt.Errorf("%w: unterminated string at %d", ErrJSON, i)
}

const maxDepth = 64

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: want a value at %d", ErrJSON, i)
	}
	if depth > maxDepth {
		return 0, fmt.Errorf("%w: nested too deeply", ErrJSON)
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		j := skipWS(b, i+1)
		if j < len(b) && b[j] == end {
			return j + 1, nil
		}
		for {
			if c == '{' {
				if j >= len(b) || b[j] != '"' {
					return 0, fmt.Errorf("%w: want a key at %d", ErrJSON, j)
				}
				ke, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = skipWS(b, ke)
				if j >= len(b) || b[j] != ':' {
					return 0, fmt.Errorf("%w: want ':' at %d", ErrJSON, j)
				}
				j = skipWS(b, j+1)
			}
			ve, err := skipValue(b, j, depth+1)
			if err != nil {
				return 0, err
			}
			j = skipWS(b, ve)
			if j >= len(b) {
				return 0, fmt.Errorf("%w: unterminated value at %d", ErrJSON, i)
			}
			if b[j] == end {
				return j + 1, nil
			}
			if b[j] != ',' {
				return 0, fmt.Errorf("%w: want ',' at %d", ErrJSON, j)
			}
			j = skipWS(b, j+1)
		}
	case c == '-' || c >= '0' && c <= '9':
		j := i + 1
		for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
			j++
		}
		return j, nil
	case hasPrefix(b[i:], "true"):
		return i + 4, nil
	case hasPrefix(b[i:], "false"):
		return i + 5, nil
	case hasPrefix(b[i:], "null"):
		return i + 4, nil
	}
	return 0, fmt.Errorf("%w: unexpected %q at %d", ErrJSON, b[i], i)
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }
