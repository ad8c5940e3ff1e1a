package jail

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logjail/logjail/internal/ban"
	"github.com/logjail/logjail/internal/clock"
	"github.com/logjail/logjail/internal/filter"
	"github.com/logjail/logjail/internal/loggen"
	"github.com/logjail/logjail/internal/source"
)

type nopBanner struct{}

func (nopBanner) Ban(o ban.Order) (ban.Ban, error) { return ban.Ban{}, nil }

// benchLines is a generated Debian auth.log (sshd attack, logins, cron noise).
func benchLines(b *testing.B, n int) []string {
	var buf bytes.Buffer
	if err := loggen.SSHD(&buf, n, 1); err != nil {
		b.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

// benchJail is an sshd jail whose clock is just after the generated log's lines.
func benchJail(b *testing.B) *Jail {
	spec := sshSpec(b, "/nonexistent")
	spec.MaxRetry = 5
	spec.FindTime = time.Hour
	j, err := New(spec, nopBanner{}, Options{Clock: clock.NewFake(time.Date(2026, 11, 20, 6, 30, 0, 0, time.UTC))})
	if err != nil {
		b.Fatal(err)
	}
	return j
}

// BenchmarkJailLines measures the jail's per-line path on an sshd log: lines/s = 1e9 / ns/op.
//
//   - filter-only: the filter.Matcher alone, the baseline;
//   - process: filter, counting and window, batches of batchLines flushed under the mutex
//     as the live jail does, without the follower;
//   - consume: the same through the file goroutine's loop, fed by a channel as a follower
//     feeds it (one send and one receive per line, on two goroutines).
func BenchmarkJailLines(b *testing.B) {
	lines := benchLines(b, 20000)
	read := time.Date(2026, 11, 20, 6, 30, 0, 0, time.UTC)
	b.Run("filter-only", func(b *testing.B) { // the baseline: filter.Matcher alone
		m := benchJail(b).spec.Filter.NewMatcher()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			m.Process(lines[i%len(lines)], read)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("process", func(b *testing.B) {
		j := benchJail(b)
		fl := &file{}
		s := newStream(j.spec.Filter, nil, source.DefaultMaxLineSize, DefaultHealthBlock, read)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s.process(lines[i%len(lines)], read)
			if i%batchLines == batchLines-1 {
				j.flush(fl, s, source.Mark{})
			}
		}
		j.flush(fl, s, source.Mark{})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		if st := j.Status(); st.LinesRead != int64(b.N) {
			b.Fatalf("read %d lines of %d", st.LinesRead, b.N)
		}
	})
	b.Run("consume", func(b *testing.B) {
		j := benchJail(b)
		fl := &file{done: make(chan struct{})}
		ch := make(chan source.Batch, 4)
		s := newStream(j.spec.Filter, nil, source.DefaultMaxLineSize, DefaultHealthBlock, read)
		var wg sync.WaitGroup
		wg.Add(1)
		b.ReportAllocs()
		b.ResetTimer()
		go j.consume(&wg, fl, chanFollower(ch), s)
		for i := 0; i < b.N; {
			batch := make([]source.Line, 0, source.BatchLines)
			for ; i < b.N && len(batch) < source.BatchLines; i++ {
				batch = append(batch, source.Line{Text: lines[i%len(lines)], Read: read})
			}
			ch <- source.Batch{Lines: batch}
		}
		close(ch)
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}

type chanFollower chan source.Batch

func (c chanFollower) Batches() <-chan source.Batch { return c }
func (c chanFollower) Stats() source.FollowStats    { return source.FollowStats{} }
func (c chanFollower) Stop()                        {}

// BenchmarkJailFile is the whole jail on a file: the follower reads a 1M-line log (the backlog
// covers it), the jail matches and counts every line: an sshd log with the sshd filter, an
// Apache access log with the wordpress filter. Compare GOMAXPROCS=1 and 2 (-cpu 1,2) to see
// what the second core brings.
func BenchmarkJailFile(b *testing.B) {
	const n = 1_000_000
	for _, c := range []struct {
		name, filter string
		gen          func(io.Writer, int, uint64) error
	}{
		{"sshd", "sshd", loggen.SSHD},
		{"access", "wordpress", loggen.Access},
	} {
		b.Run(c.name, func(b *testing.B) {
			var buf bytes.Buffer
			if err := c.gen(&buf, n, 1); err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(b.TempDir(), "test.log")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				spec := sshSpec(b, path)
				spec.MaxRetry, spec.FindTime = 5, 24*time.Hour
				spec.Filter = loadFilter(b, c.filter, filter.Options{})
				j, err := New(spec, nopBanner{}, Options{
					Clock: clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)), BacklogBytes: int64(buf.Len()),
					PollInterval: time.Millisecond,
				})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				start := time.Now()
				done := make(chan struct{})
				go func() { j.Run(ctx); close(done) }()
				for j.Status().LinesRead < n {
					time.Sleep(time.Millisecond)
				}
				el := time.Since(start)
				cancel()
				<-done
				b.ReportMetric(float64(n)/el.Seconds(), "lines/s")
			}
		})
	}
}
