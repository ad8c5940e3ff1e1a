// Package loggen writes deterministic synthetic logs for benchmarks and tests: the same
// arguments always give the same bytes.
package loggen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// attackers are a few /24s, as a flood from rented servers looks.
var attackNets = [][3]int{{203, 0, 113}, {198, 51, 100}, {192, 0, 2}, {185, 220, 101}}

var (
	pages = []string{"/", "/index.php", "/blog/", "/blog/2026/11/hello-world/", "/wp-content/themes/twentytwentyfour/style.css",
		"/wp-includes/js/jquery/jquery.min.js", "/feed/", "/contact/", "/about/", "/favicon.ico", "/robots.txt",
		"/wp-json/wp/v2/posts?per_page=10", "/?s=search+term", "/shop/cart/?add-to-cart=42", "/images/logo.png"}
	agents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	}
	floodAgents = []string{"Mozilla/5.0 (Windows NT 6.1; WOW64; rv:40.0) Gecko/20100101 Firefox/40.1", "-", "WordPress/6.4; https://example.org"}
)

// Access writes n lines of an Apache combined access log: 70 % an xmlrpc.php/wp-login.php POST
// flood from a few /24 networks, the rest normal traffic from many addresses.
func Access(w io.Writer, n int, seed uint64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 0x10651a11))
	t := start
	if err := access(bw, rng, n, t); err != nil {
		return err
	}
	return bw.Flush()
}

// SSHD writes n lines of a Debian auth.log: an ssh dictionary attack from a few /24 networks
// mixed with successful logins, cron and systemd noise.
func SSHD(w io.Writer, n int, seed uint64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 0x10651a11))
	if err := sshd(bw, rng, n, start); err != nil {
		return err
	}
	return bw.Flush()
}

// start is the time of the first line.
var start = time.Date(2026, 11, 20, 6, 25, 0, 0, time.FixedZone("", 3600))

func access(w *bufio.Writer, rng *rand.Rand, n int, t time.Time) error {
	for i := 0; i < n; i++ {
		t = t.Add(time.Duration(rng.IntN(4000)) * time.Microsecond)
		stamp := t.Format("02/Jan/2006:15:04:05 -0700")
		if rng.IntN(100) < 70 { // the flood
			net := attackNets[rng.IntN(len(attackNets))]
			path := "/xmlrpc.php"
			if rng.IntN(4) == 0 {
				path = "/wp-login.php"
			}
			fmt.Fprintf(w, "%d.%d.%d.%d - - [%s] \"POST %s HTTP/1.1\" 200 %d \"-\" \"%s\"\n",
				net[0], net[1], net[2], 1+rng.IntN(12), stamp, path, 370+rng.IntN(60), floodAgents[rng.IntN(len(floodAgents))])
			continue
		}
		status := 200
		if rng.IntN(20) == 0 {
			status = 404
		}
		method := "GET"
		if rng.IntN(50) == 0 {
			method = "POST"
		}
		fmt.Fprintf(w, "%d.%d.%d.%d - - [%s] \"%s %s HTTP/1.1\" %d %d \"https://www.example.org/\" \"%s\"\n",
			11+rng.IntN(200), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254), stamp, method,
			pages[rng.IntN(len(pages))], status, 200+rng.IntN(90000), agents[rng.IntN(len(agents))])
	}
	return nil
}

var users = []string{"admin", "test", "user", "oracle", "postgres", "ubuntu", "git", "ftpuser", "guest", "support", "deploy", "pi"}

func sshd(w *bufio.Writer, rng *rand.Rand, n int, t time.Time) error {
	pid := 20000
	for i := 0; i < n; i++ {
		t = t.Add(time.Duration(rng.IntN(20000)) * time.Microsecond)
		stamp := t.Format("Jan _2 15:04:05")
		net := attackNets[rng.IntN(len(attackNets))]
		ip := fmt.Sprintf("%d.%d.%d.%d", net[0], net[1], net[2], 1+rng.IntN(40))
		port := 1024 + rng.IntN(60000)
		if rng.IntN(8) == 0 {
			pid++
		}
		switch r := rng.IntN(100); {
		case r < 30:
			fmt.Fprintf(w, "%s web1 sshd[%d]: Failed password for root from %s port %d ssh2\n", stamp, pid, ip, port)
		case r < 45:
			u := users[rng.IntN(len(users))]
			fmt.Fprintf(w, "%s web1 sshd[%d]: Failed password for invalid user %s from %s port %d ssh2\n", stamp, pid, u, ip, port)
		case r < 55:
			u := users[rng.IntN(len(users))]
			fmt.Fprintf(w, "%s web1 sshd[%d]: Invalid user %s from %s port %d\n", stamp, pid, u, ip, port)
		case r < 65:
			fmt.Fprintf(w, "%s web1 sshd[%d]: Connection closed by authenticating user root %s port %d [preauth]\n", stamp, pid, ip, port)
		case r < 70:
			fmt.Fprintf(w, "%s web1 sshd[%d]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root\n", stamp, pid, ip)
		case r < 75:
			fmt.Fprintf(w, "%s web1 sshd[%d]: Received disconnect from %s port %d:11: Bye Bye [preauth]\n", stamp, pid, ip, port)
		case r < 80:
			fmt.Fprintf(w, "%s web1 sshd[%d]: Accepted publickey for deploy from 10.0.%d.%d port %d ssh2: ED25519 SHA256:kq3bSyZ0cWr0p3xJyKc9P1hX5o\n", stamp, pid, rng.IntN(4), 2+rng.IntN(200), port)
		case r < 90:
			fmt.Fprintf(w, "%s web1 CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n", stamp, pid+7)
		default:
			fmt.Fprintf(w, "%s web1 systemd[1]: Started session-%d.scope - Session %d of User deploy.\n", stamp, pid, pid)
		}
	}
	return nil
}
