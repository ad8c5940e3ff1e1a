package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The UtmpFollower tests drive it by hand like the Follower tests: PollInterval is an hour and
// pollUtmp runs one complete poll.

func startFollowUtmp(t testing.TB, path string, o FollowOptions) *UtmpFollower {
	t.Helper()
	f, err := FollowUtmp(context.Background(), path, o)
	if err != nil {
		t.Fatalf("FollowUtmp(%q): %v", path, err)
	}
	t.Cleanup(f.Stop)
	return f
}

// pollUtmp runs one complete poll of f and returns the lines it sent.
func pollUtmp(t testing.TB, f *UtmpFollower) []Line {
	t.Helper()
	done := make(chan bool, 1)
	go func() { done <- f.syncPoll() }()
	var got []Line
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-f.Lines():
			if !ok {
				t.Fatal("Lines closed during a poll")
			}
			got = append(got, l)
		case ok := <-done:
			if !ok {
				t.Fatal("follower stopped during a poll")
			}
			for {
				select {
				case l, ok := <-f.Lines():
					if !ok {
						return got
					}
					got = append(got, l)
				default:
					return got
				}
			}
		case <-timeout:
			t.Fatal("poll did not finish in 10s")
		}
	}
}

// fails returns n failed logins of user from 192.0.2.(first+i), a second apart.
func fails(first, n int) []UtmpRecord {
	out := make([]UtmpRecord, n)
	base := at("2026-11-22T13:00:00Z")
	for i := range out {
		out[i] = sshFail("root", fmt.Sprintf("192.0.2.%d", first+i), int32(1000+first+i), base.Add(time.Duration(first+i)*time.Second).Format(time.RFC3339))
	}
	return out
}

func recordBytes(recs []UtmpRecord) []byte {
	var out []byte
	for _, r := range recs {
		out = append(out, encodeUtmp(r)...)
	}
	return out
}

// want returns what the follower sends for recs written at file offset off onwards.
func wantLines(recs []UtmpRecord, off int64) []textOff {
	var out []textOff
	for i, r := range recs {
		out = append(out, textOff{r.Text(), off + int64(i)*UtmpRecordSize})
	}
	return out
}

func appendBytes(t testing.TB, path string, b []byte) {
	t.Helper()
	appendFile(t, path, string(b))
}

func TestFollowUtmpStart(t *testing.T) {
	const rs = UtmpRecordSize
	three := recordBytes(fails(1, 3))
	next := fails(10, 1)
	tests := []struct {
		name    string
		exists  bool
		initial []byte
		opts    FollowOptions
		want    []textOff // then next, at the end
	}{
		{"end of file", true, three, FollowOptions{}, nil},
		{"end of empty file", true, nil, FollowOptions{}, nil},
		{"from start", true, three, FollowOptions{FromStart: true}, wantLines(fails(1, 3), 0)},
		{"missing file is read from its start", false, nil, FollowOptions{}, nil},
		{"backlog of two records", true, three, FollowOptions{BacklogBytes: 2 * rs}, wantLines(fails(2, 2), rs)},
		{"backlog inside a record starts at the next one", true, three, FollowOptions{BacklogBytes: 2*rs + 10}, wantLines(fails(2, 2), rs)},
		{"backlog larger than the file", true, three, FollowOptions{BacklogBytes: 1 << 20}, wantLines(fails(1, 3), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "btmp")
			if tt.exists {
				mustDo(t, os.WriteFile(path, tt.initial, 0o600))
			}
			f := startFollowUtmp(t, path, manualOptions(t, tt.opts))
			if got := f.Stats().Exists; got != tt.exists {
				t.Errorf("Stats().Exists = %v before the first poll, want %v", got, tt.exists)
			}
			got := pollUtmp(t, f)
			appendBytes(t, path, recordBytes(next))
			got = append(got, pollUtmp(t, f)...)
			want := append(tt.want, wantLines(next, int64(len(tt.initial)))...)
			if diff := cmp.Diff(want, textOffs(got)); diff != "" {
				t.Errorf("lines mismatch (-want +got):\n%s", diff)
			}
			for _, l := range got {
				if l.File != path {
					t.Errorf("Line.File = %q, want %q", l.File, path)
				}
			}
			st := f.Stats()
			if st.Lines != int64(len(want)) || !st.Exists || st.Offset != int64(len(tt.initial)+rs) {
				t.Errorf("Stats() = %+v, want Lines %d, Exists, Offset %d", st, len(want), len(tt.initial)+rs)
			}
		})
	}
}

// A record written in pieces is read once, whole; so is one torn at EOF when the follower starts.
func TestFollowUtmpTornRecords(t *testing.T) {
	recs := fails(1, 3)
	b := recordBytes(recs)
	path := filepath.Join(t.TempDir(), "btmp")
	// The file starts with one record and the first 100 bytes of the second.
	mustDo(t, os.WriteFile(path, b[:UtmpRecordSize+100], 0o600))
	f := startFollowUtmp(t, path, manualOptions(t, FollowOptions{}))
	var got []Line
	for _, cut := range []int{UtmpRecordSize + 200, 2*UtmpRecordSize + 1, 3*UtmpRecordSize - 1, 3 * UtmpRecordSize} {
		prev, _ := os.Stat(path)
		appendBytes(t, path, b[prev.Size():cut])
		got = append(got, pollUtmp(t, f)...)
	}
	if diff := cmp.Diff(wantLines(recs[1:], UtmpRecordSize), textOffs(got)); diff != "" {
		t.Errorf("lines mismatch (-want +got):\n%s", diff)
	}
	if st := f.UtmpStats(); st.Skipped != 0 || st.Records != 2 {
		t.Errorf("UtmpStats() = %+v, want 2 records and none skipped", st)
	}
}

// Garbage records are counted and skipped; the records around them come through.
func TestFollowUtmpGarbage(t *testing.T) {
	good := fails(1, 2)
	garbage := patched(good[0], utmpOffType, 0x7f, 0x7f) // ut_type out of range
	path := filepath.Join(t.TempDir(), "btmp")
	mustDo(t, os.WriteFile(path, nil, 0o600))
	f := startFollowUtmp(t, path, manualOptions(t, FollowOptions{}))
	appendBytes(t, path, records(good[0], garbage, good[1]))
	got := pollUtmp(t, f)
	want := []textOff{{good[0].Text(), 0}, {good[1].Text(), 2 * UtmpRecordSize}}
	if diff := cmp.Diff(want, textOffs(got)); diff != "" {
		t.Errorf("lines mismatch (-want +got):\n%s", diff)
	}
	if st := f.UtmpStats(); st.Records != 2 || st.Skipped != 1 || st.BadType != 1 {
		t.Errorf("UtmpStats() = %+v, want 2 records, 1 skipped for its type", st)
	}
	if st := f.Stats(); st.Lines != 2 || st.Bytes != 3*UtmpRecordSize {
		t.Errorf("Stats() = %+v, want 2 lines and 3 records of bytes", st)
	}
}

func TestFollowUtmpRotation(t *testing.T) {
	type counts struct{ Rotations, Truncations, DroppedPartial int64 }
	recs := fails(1, 8)
	tests := []struct {
		name string
		// run writes and rotates through the harness; the records it writes must come out
		// each once, in order.
		run  func(h *utmpHarness)
		want counts
	}{
		{
			name: "rename and create, old file written after the rename",
			run: func(h *utmpHarness) {
				h.write(recs[0], recs[1])
				h.poll()
				h.rename("btmp.1")
				h.write(recs[2]) // the writer still has the old file open
				h.create()
				h.reopen()
				h.write(recs[3])
				h.poll()
				h.write(recs[4])
				h.poll()
			},
			want: counts{Rotations: 1},
		},
		{
			name: "delete and recreate",
			run: func(h *utmpHarness) {
				h.write(recs[0])
				h.poll()
				h.remove()
				h.poll()
				h.reopen()
				h.write(recs[1], recs[2])
				h.poll()
			},
			want: counts{Rotations: 1},
		},
		{
			name: "truncation to empty",
			run: func(h *utmpHarness) {
				h.write(recs[0], recs[1])
				h.poll()
				h.truncate()
				h.poll()
				h.write(recs[2])
				h.poll()
			},
			want: counts{Truncations: 1},
		},
		{
			name: "copytruncate, then writes past the old size before the next look",
			run: func(h *utmpHarness) {
				h.write(recs[0], recs[1])
				h.poll()
				h.truncate()
				h.write(recs[2], recs[3], recs[4])
				h.poll()
			},
			want: counts{Truncations: 1},
		},
		{
			name: "rotated file with a torn last record",
			run: func(h *utmpHarness) {
				h.write(recs[0])
				h.poll()
				h.writeRaw(encodeUtmp(recs[7])[:50]) // never completed: a crash
				h.rename("btmp.1")
				h.create()
				h.reopen()
				h.write(recs[1])
				h.poll()
				h.advance(time.Hour) // past RotateWait: the old file is closed
				h.poll()
			},
			want: counts{Rotations: 1, DroppedPartial: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newUtmpHarness(t)
			tt.run(h)
			var want []string
			for _, r := range h.written {
				want = append(want, r.Text())
			}
			if diff := cmp.Diff(want, lineTexts(h.got)); diff != "" {
				t.Errorf("lines mismatch (-want +got):\n%s", diff)
			}
			st := h.f.Stats()
			if got := (counts{st.Rotations, st.Truncations, st.DroppedPartial}); got != tt.want {
				t.Errorf("Stats() = %+v, want %+v", st, tt.want)
			}
		})
	}
}

// utmpHarness plays a btmp writer and logrotate against an UtmpFollower driven by hand.
type utmpHarness struct {
	t       *testing.T
	dir     string
	path    string
	f       *UtmpFollower
	w       *os.File
	now     atomic.Int64
	got     []Line
	written []UtmpRecord
}

func newUtmpHarness(t *testing.T) *utmpHarness {
	dir := t.TempDir()
	h := &utmpHarness{t: t, dir: dir, path: filepath.Join(dir, "btmp")}
	h.now.Store(time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC).UnixNano())
	h.reopen()
	h.f = startFollowUtmp(t, h.path, manualOptions(t, FollowOptions{Now: h.clock}))
	t.Cleanup(func() { h.w.Close() })
	return h
}

func (h *utmpHarness) clock() time.Time { return time.Unix(0, h.now.Load()) }

func (h *utmpHarness) write(recs ...UtmpRecord) {
	h.t.Helper()
	h.writeRaw(recordBytes(recs))
	h.written = append(h.written, recs...)
}

func (h *utmpHarness) writeRaw(b []byte) {
	h.t.Helper()
	if _, err := h.w.Write(b); err != nil {
		h.t.Fatal(err)
	}
}

func (h *utmpHarness) reopen() {
	h.t.Helper()
	if h.w != nil {
		h.w.Close()
	}
	w, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	mustDo(h.t, err)
	h.w = w
}

func (h *utmpHarness) poll()                   { h.got = append(h.got, pollUtmp(h.t, h.f)...) }
func (h *utmpHarness) advance(d time.Duration) { h.now.Add(int64(d)) }
func (h *utmpHarness) rename(to string)        { mustDo(h.t, os.Rename(h.path, filepath.Join(h.dir, to))) }
func (h *utmpHarness) remove()                 { mustDo(h.t, os.Remove(h.path)) }
func (h *utmpHarness) create()                 { mustDo(h.t, os.WriteFile(h.path, nil, 0o600)) }
func (h *utmpHarness) truncate()               { mustDo(h.t, os.Truncate(h.path, 0)) }

func TestFollowUtmpNotRegular(t *testing.T) {
	dir := t.TempDir()
	_, err := FollowUtmp(t.Context(), dir, FollowOptions{})
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "directory") {
		t.Errorf("FollowUtmp(directory) = %v, want ErrNotRegular naming a directory", err)
	}
	if _, err := FollowUtmp(t.Context(), filepath.Join(dir, "x"), FollowOptions{BacklogBytes: -1}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("FollowUtmp(BacklogBytes -1) = %v, want ErrInvalidOption", err)
	}
}

// Real polling, and Stop closes Lines and ends the goroutine.
func TestFollowUtmpLive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "btmp")
	f, err := FollowUtmp(t.Context(), path, FollowOptions{PollInterval: 2 * time.Millisecond})
	mustDo(t, err)
	recs := fails(1, 50)
	for _, r := range recs {
		appendBytes(t, path, encodeUtmp(r))
	}
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(recs) {
		select {
		case l := <-f.Lines():
			got = append(got, l.Text)
		case <-timeout:
			t.Fatalf("got %d of %d records in 10s", len(got), len(recs))
		}
	}
	var want []string
	for _, r := range recs {
		want = append(want, r.Text())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines mismatch (-want +got):\n%s", diff)
	}
	f.Stop()
	if _, ok := <-f.Lines(); ok {
		t.Error("Lines still open after Stop")
	}
	f.Stop()
}
