//go:build linux

package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFollowBadPathAtStart(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to follow
		want  error
	}{
		{"named pipe (an open for reading would block)", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "fifo")
			mustDo(t, syscall.Mkfifo(p, 0o644))
			return p
		}, ErrNotRegular},
		{"character device", func(*testing.T, string) string { return "/dev/null" }, ErrNotRegular},
		{"parent is a file", func(t *testing.T, dir string) string {
			mustDo(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o644))
			return filepath.Join(dir, "file", "app.log")
		}, syscall.ENOTDIR},
		{"symlink loop", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "loop")
			mustDo(t, os.Symlink("loop", p))
			return p
		}, syscall.ELOOP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			done := make(chan error, 1)
			go func() {
				f, err := Follow(t.Context(), path, FollowOptions{})
				if f != nil {
					f.Stop()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Errorf("Follow(%s) error = %v, want %v", path, err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Follow blocked")
			}
		})
	}
}

// What makes nxadm/tail call os.Exit (a stat of the path failing with anything but ENOENT),
// and what would block an open (a named pipe), happening to a followed path. The follower
// goes on reading the open file, counts and reports the error, and recovers when a regular
// file is back.
func TestFollowPathProblemsWhileFollowed(t *testing.T) {
	root := os.Geteuid() == 0
	tests := []struct {
		name    string
		rootToo bool // the problem exists for root too
		break_  func(t *testing.T, dir, path string)
		repair  func(t *testing.T, dir, path string)
		wantErr string // in Stats().LastError; "" for none
	}{
		{
			name: "directory at the path", rootToo: true,
			break_:  func(t *testing.T, _, path string) { mustDo(t, os.Remove(path)); mustDo(t, os.Mkdir(path, 0o755)) },
			repair:  func(t *testing.T, _, path string) { mustDo(t, os.Remove(path)) },
			wantErr: "not a regular file: directory",
		},
		{
			name: "named pipe at the path", rootToo: true,
			break_:  func(t *testing.T, _, path string) { mustDo(t, os.Remove(path)); mustDo(t, syscall.Mkfifo(path, 0o644)) },
			repair:  func(t *testing.T, _, path string) { mustDo(t, os.Remove(path)) },
			wantErr: "not a regular file: named pipe",
		},
		{
			name: "directory of the path replaced by a file (ENOTDIR)", rootToo: true,
			break_: func(t *testing.T, dir, _ string) {
				mustDo(t, os.Rename(filepath.Join(dir, "logs"), filepath.Join(dir, "logs.old")))
				mustDo(t, os.WriteFile(filepath.Join(dir, "logs"), nil, 0o644))
			},
			repair: func(t *testing.T, dir, _ string) {
				mustDo(t, os.Remove(filepath.Join(dir, "logs")))
				mustDo(t, os.Mkdir(filepath.Join(dir, "logs"), 0o755))
			},
			wantErr: "not a directory",
		},
		{
			name: "symlink loop at the path (ELOOP)", rootToo: true,
			break_:  func(t *testing.T, _, path string) { mustDo(t, os.Remove(path)); mustDo(t, os.Symlink("app.log", path)) },
			repair:  func(t *testing.T, _, path string) { mustDo(t, os.Remove(path)) },
			wantErr: "too many levels of symbolic links",
		},
		{
			name: "dangling symlink at the path", rootToo: true,
			break_:  func(t *testing.T, _, path string) { mustDo(t, os.Remove(path)); mustDo(t, os.Symlink("nowhere", path)) },
			repair:  func(t *testing.T, _, path string) { mustDo(t, os.Remove(path)) },
			wantErr: "",
		},
		{
			name: "directory not searchable (EACCES)",
			break_: func(t *testing.T, dir, _ string) {
				mustDo(t, os.Chmod(filepath.Join(dir, "logs"), 0o000))
			},
			repair: func(t *testing.T, dir, path string) {
				mustDo(t, os.Chmod(filepath.Join(dir, "logs"), 0o755))
				mustDo(t, os.Remove(path))
			},
			wantErr: "permission denied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if root && !tt.rootToo {
				t.Skip("running as root, for whom this is no problem")
			}
			dir := t.TempDir()
			mustDo(t, os.Mkdir(filepath.Join(dir, "logs"), 0o755))
			path := filepath.Join(dir, "logs", "app.log")
			mustDo(t, os.WriteFile(path, nil, 0o644))
			w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			mustDo(t, err)
			defer w.Close()
			f := startFollow(t, path, manualOptions(t, FollowOptions{}))
			w.WriteString("a1\n")
			got := pollLines(t, f)

			tt.break_(t, dir, path)
			w.WriteString("a2\n") // the writer's descriptor still works
			got = append(got, pollLines(t, f)...)
			got = append(got, pollLines(t, f)...)
			st := f.Stats()
			if tt.wantErr == "" {
				if st.LastError != "" || st.ReopenErrors != 0 {
					t.Errorf("Stats() = %+v, want no error", st)
				}
			} else if !strings.Contains(st.LastError, tt.wantErr) || st.ReopenErrors < 2 {
				t.Errorf("Stats() = %+v, want LastError with %q, counted at each poll", st, tt.wantErr)
			}

			tt.repair(t, dir, path)
			mustDo(t, os.WriteFile(path, []byte("b1\n"), 0o644))
			got = append(got, pollLines(t, f)...)
			if diff := cmp.Diff([]string{"a1", "a2", "b1"}, lineTexts(got)); diff != "" {
				t.Errorf("lines mismatch (-want +got):\n%s", diff)
			}
			if st := f.Stats(); !st.Exists {
				t.Errorf("Stats().Exists = false after the repair")
			}
		})
	}
}

// With inotify, lines and rotations are seen at once, without waiting for a poll: the
// interval here is an hour.
func TestFollowInotify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	mustDo(t, os.WriteFile(path, nil, 0o644))
	f := startFollow(t, path, FollowOptions{Watch: WatchInotify, PollInterval: time.Hour, Logger: testLogger(t)})
	// Events for other files in the directory do not wake it (checked by counting polls).
	time.Sleep(50 * time.Millisecond)
	before := f.polls.Load()
	for i := range 20 {
		appendFile(t, filepath.Join(dir, "other.log"), strings.Repeat("x", i)+"\n")
	}
	time.Sleep(50 * time.Millisecond)
	if n := f.polls.Load() - before; n != 0 {
		t.Errorf("%d polls after writes to another file, want 0", n)
	}

	steps := []struct {
		name string
		do   func(t *testing.T)
		want []string
	}{
		{"append", func(t *testing.T) { appendFile(t, path, "a1\na2\n") }, []string{"a1", "a2"}},
		{"rename and create", func(t *testing.T) {
			mustDo(t, os.Rename(path, path+".1"))
			mustDo(t, os.WriteFile(path, []byte("b1\n"), 0o644))
		}, []string{"b1"}},
		{"truncate and rewrite", func(t *testing.T) {
			mustDo(t, os.WriteFile(path, []byte("c1 longer than before\n"), 0o644)) // O_TRUNC
		}, []string{"c1 longer than before"}},
		{"delete and recreate", func(t *testing.T) {
			mustDo(t, os.Remove(path))
			mustDo(t, os.WriteFile(path, []byte("d1\n"), 0o644))
		}, []string{"d1"}},
	}
	for _, s := range steps {
		s.do(t)
		if diff := cmp.Diff(s.want, lineTexts(collectN(t, f, len(s.want)))); diff != "" {
			t.Errorf("%s: lines mismatch (-want +got):\n%s", s.name, diff)
		}
	}
}

// The directory's watch is added again when the directory is removed and created again
// (found by the safety-net poll), and when it appears after Follow.
func TestFollowInotifyDirectoryRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	path := filepath.Join(dir, "app.log")
	f := startFollow(t, path, FollowOptions{Watch: WatchInotify, PollInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	for i, line := range []string{"first", "second"} {
		mustDo(t, os.Mkdir(dir, 0o755))
		time.Sleep(100 * time.Millisecond) // a poll adds the watch
		w := f.notify.(*inotifyWatch)
		if w.lost.Load() {
			t.Fatalf("round %d: the watch was not added again", i)
		}
		appendFile(t, path, line+"\n")
		if got := lineTexts(collectN(t, f, 1)); !cmp.Equal(got, []string{line}) {
			t.Errorf("round %d: lines = %q, want %q", i, got, line)
		}
		mustDo(t, os.RemoveAll(dir))
		time.Sleep(100 * time.Millisecond) // the watch is lost, and cannot be added
	}
	if st := f.Stats(); !strings.Contains(st.LastError, "inotify_add_watch") {
		t.Errorf("Stats().LastError = %q, want the failed inotify_add_watch of a missing directory", st.LastError)
	}
}
