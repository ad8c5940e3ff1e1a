package config

import (
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"
	"testing"
)

// mapFS is an in-memory fileSystem: file name -> contents.
type mapFS map[string]string

func (m mapFS) ReadFile(name string) ([]byte, error) {
	s, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func (m mapFS) IsFile(name string) bool {
	_, ok := m[name]
	return ok
}

func (m mapFS) Glob(pattern string) ([]string, error) {
	var out []string
	for name := range m {
		ok, err := path.Match(pattern, name)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// dedent removes the common indentation of a raw string literal and its first new line, so
// configuration fixtures can be written indented in Go source. Lines are kept as they are
// otherwise (tabs inside stay tabs).
func dedent(s string) string {
	s = strings.TrimPrefix(s, "\n")
	lines := strings.Split(s, "\n")
	prefix, set := "", false
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, "\t"))]
		if !set || len(ind) < len(prefix) {
			prefix, set = ind, true
		}
	}
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, prefix)
	}
	return strings.Join(lines, "\n")
}

// diagStrings renders diagnostics for comparisons.
func diagStrings(ds Diags) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

func mustNoErrors(t *testing.T, ds Diags) {
	t.Helper()
	for _, d := range ds.Errors() {
		t.Errorf("unexpected: %v", d)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
