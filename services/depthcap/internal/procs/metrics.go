package procs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Series is one series of a scrape: its labels and value.
type Series struct {
	Labels map[string]string
	Value  float64
}

// Metrics is a parsed Prometheus text exposition: metric name -> series.
// Histograms and summaries appear as their _bucket, _sum and _count
// series, as in the text format.
type Metrics map[string][]Series

// Get returns the value of the first series of name whose labels include
// the given name/value pairs, and whether there was one.
func (m Metrics) Get(name string, labels ...string) (float64, bool) {
	for _, s := range m[name] {
		if s.match(labels) {
			return s.Value, true
		}
	}
	return 0, false
}

// Value is Get without the found flag (0 when absent).
func (m Metrics) Value(name string, labels ...string) float64 {
	v, _ := m.Get(name, labels...)
	return v
}

// Sum adds every series of name whose labels include the pairs.
func (m Metrics) Sum(name string, labels ...string) float64 {
	var t float64
	for _, s := range m[name] {
		if s.match(labels) {
			t += s.Value
		}
	}
	return t
}

func (s Series) match(labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if s.Labels[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}

// Scrape GETs url and parses the Prometheus text format.
func Scrape(ctx context.Context, url string) (Metrics, error) {
	code, body, err := httpGet(ctx, url, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, code)
	}
	return ParseMetrics(strings.NewReader(body))
}

// ParseMetrics parses the Prometheus text exposition format (version
// 0.0.4): comment lines are skipped, each sample line is
// name[{label="value",...}] value [timestamp].
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		m[name] = append(m[name], s)
	}
	return m, sc.Err()
}

func parseSample(line string) (string, Series, error) {
	s := Series{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return "", s, fmt.Errorf("no value in %q", line)
	}
	name, rest := line[:i], line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " \t,")
			if rest == "" {
				return "", s, fmt.Errorf("unterminated labels in %q", line)
			}
			if rest[0] == '}' {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
				return "", s, fmt.Errorf("bad label in %q", line)
			}
			key := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var b strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						b.WriteByte('\n')
					default:
						b.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				b.WriteByte(c)
			}
			if !closed {
				return "", s, fmt.Errorf("unterminated label value in %q", line)
			}
			s.Labels[key] = b.String()
		}
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", s, fmt.Errorf("no value in %q", line)
	}
	v, err := parseValue(f[0])
	if err != nil {
		return "", s, fmt.Errorf("value in %q: %w", line, err)
	}
	s.Value = v
	return name, s, nil
}

func parseValue(v string) (float64, error) {
	switch v {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(v, 64)
}

// httpGet GETs url with a timeout and returns the status and body (at
// most 64 MiB).
func httpGet(ctx context.Context, url string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("GET %s: read body: %w", url, err)
	}
	return resp.StatusCode, string(b), nil
}

// HTTPGet GETs url (timeout 10s) and returns the status and body.
func HTTPGet(ctx context.Context, url string) (int, string, error) {
	return httpGet(ctx, url, 10*time.Second)
}
