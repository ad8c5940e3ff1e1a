package filter_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
)

// repoRoot is where filter.d/ and testdata/filters/ live.
const repoRoot = "../.."

// sampleWant is the verdict annotated before a sample line: `# want: nomatch` or
// `# want: {"host":"192.0.2.1","time":"2026-11-22T13:42:01Z","user":"root"}`.
type sampleWant struct {
	Match bool   `json:"-"`
	Host  string `json:"host"`
	Time  string `json:"time,omitempty"`
	User  string `json:"user,omitempty"`
}

type sampleLine struct {
	no      int // line number in the sample file
	text    string
	want    sampleWant
	options string // filter options in force ("" = none)
	now     time.Time
}

// readSamples parses a testdata/filters/NAME.log file. Every log line must be preceded by a
// "# want:" line; "# now:" and "# options:" set the reading time and the filter options for the
// lines after them.
func readSamples(t *testing.T, path string) []sampleLine {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []sampleLine
	now := time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)
	options := ""
	var want *sampleWant
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# now:"):
			v := strings.TrimSpace(strings.TrimPrefix(line, "# now:"))
			if now, err = time.Parse(time.RFC3339, v); err != nil {
				t.Fatalf("%s:%d: bad now: %v", path, n, err)
			}
		case strings.HasPrefix(line, "# options:"):
			options = strings.TrimSpace(strings.TrimPrefix(line, "# options:"))
		case strings.HasPrefix(line, "# want:"):
			v := strings.TrimSpace(strings.TrimPrefix(line, "# want:"))
			w := sampleWant{}
			if v != "nomatch" {
				if err := json.Unmarshal([]byte(v), &w); err != nil {
					t.Fatalf("%s:%d: bad want: %v", path, n, err)
				}
				w.Match = true
			}
			want = &w
		case strings.HasPrefix(line, "#"), strings.TrimSpace(line) == "" && want == nil:
			// comment or spacing
		default:
			if want == nil {
				t.Fatalf("%s:%d: log line without a preceding # want: annotation", path, n)
			}
			out = append(out, sampleLine{no: n, text: line, want: *want, options: options, now: now})
			want = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestShippedFilterSamples runs every shipped filter over its annotated samples. A filter
// without samples fails the test.
func TestShippedFilterSamples(t *testing.T) {
	confs, err := filepath.Glob(filepath.Join(repoRoot, "filter.d", "*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(confs) == 0 {
		t.Fatal("no filters in filter.d")
	}
	for _, conf := range confs {
		name := strings.TrimSuffix(filepath.Base(conf), ".conf")
		if name == "common" || strings.HasSuffix(name, "-common") {
			continue // included by others, not a filter of its own
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(repoRoot, "testdata", "filters", name+".log")
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("filter %s has no samples: %v", name, err)
			}
			samples := readSamples(t, path)
			if len(samples) < 5 {
				t.Fatalf("filter %s has only %d samples", name, len(samples))
			}
			checkSamples(t, name, path, samples)
		})
	}
}

func checkSamples(t *testing.T, name, path string, samples []sampleLine) {
	t.Helper()
	matchers := map[string]*filter.Matcher{}
	for _, s := range samples {
		m := matchers[s.options]
		if m == nil {
			ref := name
			if s.options != "" {
				ref = fmt.Sprintf("%s[%s]", name, s.options)
			}
			def, diags := config.LoadFilter(repoRoot, ref, nil)
			if err := diags.Err(); err != nil {
				t.Fatalf("load %s: %v", ref, err)
			}
			f, err := filter.New(def, filter.Options{Location: time.UTC})
			if err != nil {
				t.Fatalf("compile %s: %v", ref, err)
			}
			for _, r := range f.Fail {
				if r.Engine != filter.EngineRE2 {
					t.Errorf("%s: shipped filter regex needs the backtracking engine: %s", ref, r.Source)
				}
			}
			m = f.NewMatcher()
			matchers[s.options] = m
		}
		res := m.Process(s.text, s.now)
		got := sampleWant{Match: res.Verdict == filter.Matched}
		if got.Match {
			fl := res.Failures[0]
			got.Host = fl.Addr.String()
			got.User = fl.User
			if s.want.Time != "" && res.HasDate {
				got.Time = fl.Time.Format(time.RFC3339)
			}
			if s.want.Time != "" && !res.HasDate {
				got.Time = "(no date found)"
			}
			if s.want.User == "" {
				got.User = ""
			}
		}
		if diff := cmp.Diff(s.want, got, cmp.Comparer(sameTime)); diff != "" {
			t.Errorf("%s:%d: %q (options %q) mismatch (-want +got):\n%s", path, s.no, s.text, s.options, diff)
		}
	}
}

// sameTime compares want/got verdicts with times as instants, not as text.
func sameTime(a, b sampleWant) bool {
	if a.Match != b.Match || a.Host != b.Host || a.User != b.User {
		return false
	}
	if a.Time == b.Time {
		return true
	}
	ta, errA := time.Parse(time.RFC3339Nano, a.Time)
	tb, errB := time.Parse(time.RFC3339Nano, b.Time)
	return errA == nil && errB == nil && ta.Equal(tb)
}

// TestSampleFilesHaveFilters catches sample files whose filter was removed or renamed.
func TestSampleFilesHaveFilters(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join(repoRoot, "testdata", "filters", "*.log"))
	var orphans []string
	for _, l := range logs {
		name := strings.TrimSuffix(filepath.Base(l), ".log")
		if _, err := os.Stat(filepath.Join(repoRoot, "filter.d", name+".conf")); err != nil {
			orphans = append(orphans, name)
		}
	}
	sort.Strings(orphans)
	if len(orphans) > 0 {
		t.Errorf("samples without a filter: %v", orphans)
	}
}
