package tester

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/config"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/loggen"
)

func shipped(t testing.TB, ref string) *filter.Filter {
	t.Helper()
	def, diags := config.LoadFilter("../..", ref, nil)
	if err := diags.Err(); err != nil {
		t.Fatal(err)
	}
	f, err := filter.New(def, filter.Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRunText(t *testing.T) {
	log := strings.Join([]string{
		`192.0.2.1 - - [22/Nov/2026:13:00:00 +0000] "POST /xmlrpc.php HTTP/1.1" 200 370 "-" "-"`,
		`192.0.2.1 - - [22/Nov/2026:13:00:01 +0000] "POST /wp-login.php HTTP/1.1" 200 370 "-" "-"`,
		`198.51.100.2 - - [22/Nov/2026:13:00:02 +0000] "GET / HTTP/1.1" 200 3700 "-" "Mozilla/5.0"`,
		`no date and no match`,
		"\x00\xff\xfe binary garbage",
		strings.Repeat("x", 1<<20), // a 1 MiB line
		`2001:db8::5 - - [22/Nov/2026:13:00:03 +0000] "POST /blog/xmlrpc.php HTTP/1.1" 200 370 "-" "-"`,
	}, "\n") // no final newline: the last line counts too
	var matches []Match
	st, _, err := Run(shipped(t, "wordpress"), strings.NewReader(log), Options{
		Now:     time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC),
		OnMatch: func(m Match) { m.Text = ""; matches = append(matches, m) },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := []int{st.Lines, st.Matched, st.Ignored, st.Missed, st.NoDate}
	if diff := cmp.Diff([]int{7, 3, 0, 4, 3}, got); diff != "" {
		t.Errorf("lines, matched, ignored, missed, no date (-want +got):\n%s", diff)
	}
	if len(matches) != 3 || matches[0].Line != 1 || matches[2].Line != 7 || matches[2].Addr.String() != "2001:db8::5" {
		t.Errorf("matches = %+v", matches)
	}
	if !matches[0].Time.Equal(time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("time = %v", matches[0].Time)
	}
}

// TestRunBtmp reads the binary btmp fixture of internal/source: records are recognised by
// content and numbered as lines; the garbage record is counted and skipped.
func TestRunBtmp(t *testing.T) {
	data, err := os.ReadFile("../source/testdata/btmp.sample")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	st, _, err := Run(shipped(t, "btmp"), bytes.NewReader(data), Options{
		Now:     time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC),
		OnMatch: func(m Match) { hosts = append(hosts, m.Addr.String()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines != 5 || st.Garbage != 1 || st.Matched == 0 {
		t.Errorf("lines %d garbage %d matched %d, want 5 records, 1 garbage, some matches", st.Lines, st.Garbage, st.Matched)
	}
	t.Logf("btmp hosts: %v", hosts)
}

func BenchmarkRunAccess(b *testing.B) {
	var buf bytes.Buffer
	if err := loggen.Access(&buf, 200000, 1); err != nil {
		b.Fatal(err)
	}
	f := shipped(b, "wordpress")
	b.SetBytes(int64(buf.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, _, err := Run(f, bytes.NewReader(buf.Bytes()), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Lines)/st.Elapsed.Seconds(), "lines/s")
	}
}
