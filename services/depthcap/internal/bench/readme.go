package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The README's performance table sits between these markers.
const (
	readmeBegin = "<!-- bench:begin -->"
	readmeEnd   = "<!-- bench:end -->"
)

// UpdateReadme replaces the text between the bench markers of the README
// at path with the table of rs, the machine and links to the result files
// under out (relative to the README). The README must hold both markers,
// in order, once each.
func UpdateReadme(path, out string, rs []*ScenarioResult) error {
	if len(rs) == 0 {
		return nil
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(old, []byte(readmeBegin)), bytes.Index(old, []byte(readmeEnd))
	if i < 0 || j < i || bytes.Count(old, []byte(readmeBegin)) != 1 || bytes.Count(old, []byte(readmeEnd)) != 1 {
		return fmt.Errorf("%s: want one %s followed by one %s", path, readmeBegin, readmeEnd)
	}
	rel, err := filepath.Rel(filepath.Dir(path), out)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(readmeBegin + "\n")
	WriteReadmeTable(&b, rs)
	m := rs[0].Machine
	var links []string
	for _, r := range rs {
		f := filepath.ToSlash(filepath.Join(rel, r.Date+"-"+r.Scenario+".md"))
		links = append(links, fmt.Sprintf("[%s](%s)", f, f))
	}
	fmt.Fprintf(&b, "\n%s, %d CPUs (%s), %s RAM, commit %s. Details and the targets: %s.\n",
		rs[0].Date, m.CPUs, m.CPUModel, m.MemTotal, m.Commit, strings.Join(links, ", "))
	var doc bytes.Buffer
	doc.Write(old[:i])
	doc.WriteString(b.String())
	doc.Write(old[j:])
	if bytes.Equal(doc.Bytes(), old) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, doc.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
