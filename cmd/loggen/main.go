// Command loggen writes deterministic synthetic logs for benchmarks: an Apache combined access
// log shaped like an xmlrpc.php/wp-login.php flood from a few /24 networks mixed with normal
// traffic, and an sshd auth.log shaped like a dictionary attack mixed with normal system noise.
// The same flags always give the same bytes.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/logjail/logjail/internal/loggen"
)

func main() {
	kind := flag.String("kind", "access", "access or sshd")
	lines := flag.Int("lines", 1_000_000, "number of lines")
	seed := flag.Uint64("seed", 1, "random seed")
	out := flag.String("o", "-", "output file (- for stdout)")
	flag.Parse()
	var w io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loggen:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	var err error
	switch *kind {
	case "access":
		err = loggen.Access(w, *lines, *seed)
	case "sshd":
		err = loggen.SSHD(w, *lines, *seed)
	default:
		err = fmt.Errorf("unknown kind %q", *kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loggen:", err)
		os.Exit(1)
	}
}
