package source

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/logjail/logjail/internal/store"
)

// positionAt is the position of the file at path with reading done up to off, as a follower
// saves it: its identity and its head as it is now.
func positionAt(t testing.TB, path string, off int64) store.Position {
	t.Helper()
	f, err := os.Open(path)
	mustDo(t, err)
	defer f.Close()
	fi, err := f.Stat()
	mustDo(t, err)
	id := fileKey(fi)
	if !id.known {
		t.Skip("no device and inode on this platform")
	}
	n, sum, err := store.Head(f, store.MaxHead)
	mustDo(t, err)
	return store.Position{Dev: id.dev, Inode: id.ino, Offset: off, HeadLen: n, HeadHash: sum}
}

// replace puts a new file (another inode) with content at path.
func replace(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".new"
	mustDo(t, os.WriteFile(tmp, []byte(content), 0o644))
	mustDo(t, os.Rename(tmp, path))
}

// rewrite truncates the file at path (same inode) and writes content.
func rewrite(t testing.TB, path, content string) {
	t.Helper()
	mustDo(t, os.Truncate(path, 0))
	appendFile(t, path, content)
}

// syncBuffer collects a logger's output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func bufferLogger(t testing.TB, buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(buf, logWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// line50 is the i-th line of a test log: 50 bytes with its newline.
func line50(i int) string { return fmt.Sprintf("%-49s\n", fmt.Sprintf("line %d", i)) }

func lines50(from, to int) string {
	var sb strings.Builder
	for i := from; i < to; i++ {
		sb.WriteString(line50(i))
	}
	return sb.String()
}

func want50(from, to int, off int64) []textOff {
	var out []textOff
	for i := from; i < to; i++ {
		out = append(out, textOff{strings.TrimSuffix(line50(i), "\n"), off})
		off += 50
	}
	return out
}

// A follower given the position saved by an earlier one reads the lines after it if the file is
// the same, and the whole file if it is another one, or was truncated or rewritten meanwhile.
func TestFollowResume(t *testing.T) {
	const size = 40 * 50 // lines50(0, 40): 2000 bytes, a head of store.MaxHead
	tests := []struct {
		name string
		// initial is the file when the position is taken, at offset off; then change runs
		// (the daemon is down), Follow starts, and more is appended after the first poll.
		initial string
		off     int64
		change  func(t *testing.T, path string)
		opts    FollowOptions
		more    string
		want    []textOff
		wantLog string
	}{
		{
			name: "same file, at its end", initial: lines50(0, 40), off: size,
			more: line50(40), want: want50(40, 41, size), wantLog: "resuming at saved position",
		},
		{
			name: "same file, lines written while stopped", initial: lines50(0, 40), off: size,
			change: func(t *testing.T, path string) { appendFile(t, path, lines50(40, 43)) },
			more:   line50(43), want: want50(40, 44, size), wantLog: "resuming at saved position",
		},
		{
			name: "same file, position in its middle", initial: lines50(0, 40), off: 30 * 50,
			want: want50(30, 40, 30*50),
		},
		{
			name: "no backlog, and FromStart does not apply", initial: lines50(0, 40), off: size,
			opts: FollowOptions{BacklogBytes: 1 << 20, FromStart: true},
			more: line50(40), want: want50(40, 41, size),
		},
		{
			name: "a small file that grew: the head saved is shorter", initial: lines50(0, 2), off: 100,
			change: func(t *testing.T, path string) { appendFile(t, path, lines50(2, 40)) },
			want:   want50(2, 40, 100), wantLog: "resuming at saved position",
		},
		{
			name: "truncated below the position, same head", initial: lines50(0, 40), off: size,
			change: func(t *testing.T, path string) { mustDo(t, os.Truncate(path, 30*50)) },
			want:   want50(0, 30, 0), wantLog: "file shorter than the saved position",
		},
		{
			name: "another file at the path (rotated while stopped)", initial: lines50(0, 40), off: size,
			change: func(t *testing.T, path string) { replace(t, path, lines50(100, 103)) },
			want:   want50(100, 103, 0), wantLog: "another file at the path",
		},
		{
			name: "another file with the same content", initial: lines50(0, 40), off: size,
			change: func(t *testing.T, path string) { replace(t, path, lines50(0, 41)) },
			want:   want50(0, 41, 0), wantLog: "another file at the path",
		},
		{
			name: "same inode, rewritten past the position", initial: lines50(0, 40), off: size,
			change: func(t *testing.T, path string) { rewrite(t, path, "new head\n"+lines50(100, 150)) },
			want:   append([]textOff{{"new head", 0}}, want50(100, 150, 9)...), wantLog: "first bytes changed",
		},
		{
			name: "position inside a line: reading starts at the next", initial: lines50(0, 40), off: 30*50 + 7,
			want: want50(31, 40, 31*50),
		},
		{
			name: "position just before a newline", initial: lines50(0, 40), off: 31*50 - 1,
			want: want50(31, 40, 31*50),
		},
		{
			name: "missing file: read from its start when it appears", initial: lines50(0, 40), off: size,
			change: func(t *testing.T, path string) { mustDo(t, os.Remove(path)) },
			more:   lines50(200, 202), want: want50(200, 202, 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			mustDo(t, os.WriteFile(path, []byte(tt.initial), 0o644))
			p := positionAt(t, path, tt.off)
			if tt.change != nil {
				tt.change(t, path)
			}
			var logs syncBuffer
			o := tt.opts
			o.Resume, o.Logger = &p, bufferLogger(t, &logs)
			f := startFollow(t, path, manualOptions(t, o))
			got := pollLines(t, f)
			if tt.more != "" {
				appendFile(t, path, tt.more)
			}
			got = append(got, pollLines(t, f)...)
			if diff := cmp.Diff(tt.want, textOffs(got)); diff != "" {
				t.Errorf("lines mismatch (-want +got):\n%s", diff)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log does not say %q:\n%s", tt.wantLog, logs.String())
			}
		})
	}
}

// batcher is a Follower or UtmpFollower with Batch.
type batcher interface {
	syncPoll() bool
	Batches() <-chan Batch
}

// pollBatches runs one complete poll of f (with Batch) and returns the batches it sent.
func pollBatches(t testing.TB, f batcher) []Batch {
	t.Helper()
	done := make(chan bool, 1)
	go func() { done <- f.syncPoll() }()
	var got []Batch
	timeout := time.After(10 * time.Second)
	for {
		select {
		case b, ok := <-f.Batches():
			if !ok {
				t.Fatal("Batches closed during a poll")
			}
			got = append(got, b)
		case ok := <-done:
			if !ok {
				t.Fatal("follower stopped during a poll")
			}
			for {
				select {
				case b, ok := <-f.Batches():
					if !ok {
						return got
					}
					got = append(got, b)
				default:
					return got
				}
			}
		case <-timeout:
			t.Fatal("poll did not finish in 10s")
		}
	}
}

// markOf is what the tests compare of a batch's Mark: the position's offset and head length,
// and whether it is the file now at path; noMark for the zero Mark.
type markOf struct {
	Offset  int64
	HeadLen int
	AtPath  bool
}

var noMark = markOf{Offset: -1}

func marks(t testing.TB, path string, bs []Batch) []markOf {
	t.Helper()
	var out []markOf
	for _, b := range bs {
		p, ok := b.Mark.Position()
		if ok != !b.Mark.IsZero() {
			t.Errorf("Mark.Position ok = %v, IsZero = %v", ok, b.Mark.IsZero())
		}
		if !ok {
			out = append(out, noMark)
			continue
		}
		now := positionAt(t, path, 0)
		h, err := os.Open(path)
		mustDo(t, err)
		same, err := p.SameHead(h)
		h.Close()
		mustDo(t, err)
		out = append(out, markOf{p.Offset, p.HeadLen, p.Dev == now.Dev && p.Inode == now.Inode && same})
	}
	return out
}

// Each batch carries the position after its last line, in the file it was read from, with that
// file's identity and head; batches of a file rotated away carry none.
func TestFollowBatchMark(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	mustDo(t, os.WriteFile(path, []byte("a\nb\n"), 0o644))
	f := startFollow(t, path, manualOptions(t, FollowOptions{FromStart: true, Batch: true, MaxLineSize: 8}))

	check := func(what string, want []markOf, bs []Batch) {
		t.Helper()
		if diff := cmp.Diff(want, marks(t, path, bs)); diff != "" {
			t.Errorf("%s: marks (-want +got):\n%s", what, diff)
		}
	}
	check("start", []markOf{{4, 4, true}}, pollBatches(t, f))

	// A CRLF line, a line cut at MaxLineSize, and an incomplete one: the position is after the
	// last complete line; the head is all that was read.
	appendFile(t, path, "c\r\n0123456789abc\nd")
	check("crlf and cut", []markOf{{21, 22, true}}, pollBatches(t, f))

	// More than BatchLines lines in one read: each batch ends where its last line ends.
	appendFile(t, path, "\n"+strings.Repeat("x\n", BatchLines+10))
	bs := pollBatches(t, f)
	const size = 23 + 2*(BatchLines+10)
	check("two batches", []markOf{{23 + 2*(BatchLines-1), size, true}, {size, size, true}}, bs)

	// Rotation: what the old file gets after the rename carries no position; the new file's
	// lines carry the new file's.
	old := filepath.Join(dir, "app.log.1")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	mustDo(t, err)
	mustDo(t, os.Rename(path, old))
	_, err = w.WriteString("late\n")
	mustDo(t, err)
	w.Close()
	mustDo(t, os.WriteFile(path, []byte("new\n"), 0o644))
	bs = pollBatches(t, f)
	if diff := cmp.Diff([]string{"late", "new"}, lineTexts(append(bs[0].Lines, bs[1].Lines...))); diff != "" || len(bs) != 2 {
		t.Fatalf("batches after the rotation (-want +got):\n%s", diff)
	}
	check("rotation", []markOf{noMark, {4, 4, true}}, bs)

	// Copytruncate: positions start again in the new content, with its head.
	mustDo(t, os.Truncate(path, 0))
	appendFile(t, path, "after truncation\n")
	check("truncation", []markOf{{17, 17, true}}, pollBatches(t, f))
}

// A position made of a Mark, saved and given back as Resume, starts the next follower after the
// last line of the batch, whatever the first follower read ahead.
func TestFollowMarkResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	mustDo(t, os.WriteFile(path, []byte(lines50(0, 10)), 0o644))
	f := startFollow(t, path, manualOptions(t, FollowOptions{FromStart: true, Batch: true}))
	bs := pollBatches(t, f)
	appendFile(t, path, lines50(10, 12)) // read by the first follower, but not processed
	pollBatches(t, f)
	f.Stop()
	p, ok := bs[len(bs)-1].Mark.Position()
	if !ok {
		t.Fatal("no position")
	}
	f2 := startFollow(t, path, manualOptions(t, FollowOptions{Resume: &p}))
	if diff := cmp.Diff(want50(10, 12, 500), textOffs(pollLines(t, f2))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// The btmp follower resumes as the text follower does, on record boundaries.
func TestFollowUtmpResume(t *testing.T) {
	const rs = UtmpRecordSize
	recs := fails(1, 10)
	initial := recordBytes(recs)
	tests := []struct {
		name    string
		off     int64
		change  func(t *testing.T, path string)
		want    []textOff // then the record appended after the first poll
		wantLog string
	}{
		{"same file, at its end", 10 * rs, nil, nil, "resuming at saved position"},
		{"same file, records written while stopped", 10 * rs,
			func(t *testing.T, path string) { appendBytes(t, path, recordBytes(fails(20, 2))) },
			wantLines(fails(20, 2), 10*rs), "resuming at saved position"},
		{"same file, position in its middle", 7 * rs, nil, wantLines(recs[7:], 7*rs), "resuming at saved position"},
		{"position inside a record: the next one", 7*rs + 10, nil, wantLines(recs[8:], 8*rs), "resuming at saved position"},
		{"truncated below the position, same head", 10 * rs,
			func(t *testing.T, path string) { mustDo(t, os.Truncate(path, 6*rs)) },
			wantLines(recs[:6], 0), "file shorter than the saved position"},
		{"another file at the path", 10 * rs,
			func(t *testing.T, path string) { replace(t, path, string(recordBytes(fails(30, 2)))) },
			wantLines(fails(30, 2), 0), "another file at the path"},
		{"same inode, rewritten past the position", 10 * rs,
			func(t *testing.T, path string) { rewrite(t, path, string(recordBytes(fails(40, 12)))) },
			wantLines(fails(40, 12), 0), "first bytes changed"},
		{"missing file", 10 * rs, func(t *testing.T, path string) { mustDo(t, os.Remove(path)) }, nil, ""},
	}
	next := fails(90, 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "btmp")
			mustDo(t, os.WriteFile(path, initial, 0o600))
			p := positionAt(t, path, tt.off)
			if tt.change != nil {
				tt.change(t, path)
			}
			var logs syncBuffer
			f := startFollowUtmp(t, path, manualOptions(t, FollowOptions{Resume: &p, Logger: bufferLogger(t, &logs), BacklogBytes: 1 << 20}))
			got := pollUtmp(t, f)
			size := int64(0)
			if fi, err := os.Stat(path); err == nil {
				size = fi.Size()
			}
			appendBytes(t, path, recordBytes(next))
			got = append(got, pollUtmp(t, f)...)
			want := append(tt.want, wantLines(next, size)...)
			if diff := cmp.Diff(want, textOffs(got)); diff != "" {
				t.Errorf("lines mismatch (-want +got):\n%s", diff)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log does not say %q:\n%s", tt.wantLog, logs.String())
			}
		})
	}
}

// Batches of the btmp follower carry the position after their last record; a Mark made into a
// position resumes after it.
func TestFollowUtmpBatchMark(t *testing.T) {
	const rs = UtmpRecordSize
	dir := t.TempDir()
	path := filepath.Join(dir, "btmp")
	mustDo(t, os.WriteFile(path, recordBytes(fails(1, 3)), 0o600))
	f := startFollowUtmp(t, path, manualOptions(t, FollowOptions{FromStart: true, Batch: true}))
	if f.Lines() != nil {
		t.Error("Lines is not nil with Batch")
	}
	check := func(what string, want []markOf, bs []Batch) {
		t.Helper()
		if diff := cmp.Diff(want, marks(t, path, bs)); diff != "" {
			t.Errorf("%s: marks (-want +got):\n%s", what, diff)
		}
	}
	bs := pollBatches(t, f)
	check("start", []markOf{{3 * rs, rs, true}}, bs)
	first, _ := bs[0].Mark.Position()

	// A torn record at the end is not in the position.
	b := recordBytes(fails(4, 2))
	appendBytes(t, path, b[:rs+100])
	check("torn record", []markOf{{4 * rs, rs, true}}, pollBatches(t, f))
	appendBytes(t, path, b[rs+100:])
	check("torn record completed", []markOf{{5 * rs, rs, true}}, pollBatches(t, f))

	// Rotation: the old file's last records carry no position.
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	mustDo(t, err)
	mustDo(t, os.Rename(path, filepath.Join(dir, "btmp.1")))
	_, err = w.Write(recordBytes(fails(6, 1)))
	mustDo(t, err)
	w.Close()
	mustDo(t, os.WriteFile(path, recordBytes(fails(7, 2)), 0o600))
	check("rotation", []markOf{noMark, {2 * rs, rs, true}}, pollBatches(t, f))
	f.Stop()

	// The first position, given to a follower of the old file put back at the path.
	mustDo(t, os.Rename(filepath.Join(dir, "btmp.1"), path))
	f2 := startFollowUtmp(t, path, manualOptions(t, FollowOptions{Resume: &first}))
	if diff := cmp.Diff(wantLines(fails(4, 3), 3*rs), textOffs(pollUtmp(t, f2))); diff != "" {
		t.Errorf("resumed (-want +got):\n%s", diff)
	}
}
